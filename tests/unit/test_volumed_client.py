"""The manager's volumed client and its fake honour one contract: deleting a
volume's data succeeds, and volumed's refusal comes back as a VolumePluginError
with volumed's words. The client talks to a real volumed plugin app (on a
unix socket, over volumed's fake backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from api.volume_plugin import VolumePluginError
from manager.volumed_client import FakeVolumed, VolumeData, VolumedClient
from tests.unit.test_volumed_plugin import Node

pytestmark = pytest.mark.timeout(20)
SHOAL_OPTIONS = {"replication": "001", "sharing": "none"}

Refuse = Callable[[str], None]  # makes the next delete fail with this much in its message


@pytest.fixture(params=["volumed", "fake"])
async def volumed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[VolumeData, Refuse]]:
    if request.param == "fake":
        fake = FakeVolumed()
        yield fake, lambda why: setattr(fake, "refuse", why)
        return
    node = Node(tmp_path)
    await node.start()
    yield VolumedClient(node.socket, timeout=5), lambda _: node.fake.fail.add("remove")
    await node.stop()


async def test_deleting_data_succeeds_and_may_be_repeated(
    volumed: tuple[VolumeData, Refuse],
) -> None:
    client, _ = volumed
    await client.delete_data("db", "shoal", SHOAL_OPTIONS)
    await client.delete_data("db", "shoal", SHOAL_OPTIONS)  # nothing left: still fine


async def test_a_refusal_is_a_volumed_error(volumed: tuple[VolumeData, Refuse]) -> None:
    client, refuse = volumed
    refuse("remove db: injected failure")
    with pytest.raises(VolumePluginError, match="remove db: injected failure"):
        await client.delete_data("db", "shoal", SHOAL_OPTIONS)


async def test_the_real_one_sends_the_volume_as_created(tmp_path: Path) -> None:
    node = Node(tmp_path)
    await node.start()
    try:
        await VolumedClient(node.socket).delete_data("db", "shoal", SHOAL_OPTIONS)
        assert node.fake.calls == [("create", "db"), ("remove", "db")]
        with pytest.raises(VolumePluginError, match="invalid replication '9'"):
            await VolumedClient(node.socket).delete_data("db", "shoal", {"replication": "9"})
    finally:
        await node.stop()


async def test_no_volumed_is_a_volumed_error(tmp_path: Path) -> None:
    with pytest.raises(VolumePluginError, match=r"volumed at .*none\.sock"):
        await VolumedClient(tmp_path / "none.sock", timeout=2).delete_data("db", "shoal", {})
