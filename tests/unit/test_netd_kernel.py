"""netd's kernel steps, with the commands recorded instead of run."""

from __future__ import annotations

from typing import Any

import pytest

from netd import kernel
from netd.plan import GATEWAY_BRIDGE, gateway_bridge_mac


def test_the_gateway_bridge_mac_is_fixed_by_its_address() -> None:
    assert gateway_bridge_mac("172.18.0.1/16") == "02:42:ac:12:00:01"
    assert gateway_bridge_mac("172.18.0.1") == gateway_bridge_mac("172.18.0.1/16")


@pytest.mark.parametrize("present", [False, True])
async def test_the_gateway_bridge_gets_its_mac_set_new_or_found(
    monkeypatch: pytest.MonkeyPatch, present: bool
) -> None:
    # Set even on a bridge found (a restarted or upgraded netd): a bridge whose
    # MAC was never set follows its ports' and would change under containers.
    commands: list[tuple[str, ...]] = []

    async def links() -> dict[str, dict[str, Any]]:
        return {GATEWAY_BRIDGE: {}} if present else {}

    async def run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
        commands.append(argv)
        return ""

    monkeypatch.setattr(kernel, "links", links)
    monkeypatch.setattr(kernel, "run", run)
    await kernel.ensure_gateway_bridge("172.18.0.1/16")
    set_mac = ("ip", "link", "set", GATEWAY_BRIDGE, "address", "02:42:ac:12:00:01")
    assert set_mac in commands
    added = ("ip", "link", "add", GATEWAY_BRIDGE, "type", "bridge")
    assert (added in commands) is not present
    if not present:
        assert commands.index(added) < commands.index(set_mac)
    # Before it carries traffic: the address it answers on and its link going up.
    assert commands.index(set_mac) < commands.index(("ip", "link", "set", GATEWAY_BRIDGE, "up"))
