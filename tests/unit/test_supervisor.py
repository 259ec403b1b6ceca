"""The lab supervisor keeps its processes running and stops them all on request."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from lab.configs import ServiceSpec
from lab.supervisor import Supervisor, read_status


def service(tmp_path: Path, name: str, script: str) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        argv=["sh", "-c", script],
        log=str(tmp_path / f"{name}.log"),
        cgroup=f"lab/{name}",
    )


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_a_killed_process_is_restarted_and_all_stop_on_request(tmp_path: Path) -> None:
    cgroups = tmp_path / "cgroups"
    supervisor = Supervisor(tmp_path, [service(tmp_path, "sleeper", "exec sleep 60")], cgroups)
    run = asyncio.create_task(supervisor.run())
    state = supervisor.states[0]
    await wait_for(lambda: state.pid is not None)
    first = state.pid
    assert first is not None
    # The process joined its cgroup before it ran the command.
    assert (cgroups / "lab/sleeper/cgroup.procs").read_text().strip() == str(first)

    os.kill(first, signal.SIGKILL)
    await wait_for(lambda: state.pid not in (None, first))
    assert state.restarts == 1 and state.last_exit == -signal.SIGKILL
    assert read_status(tmp_path)["sleeper"]["pid"] == state.pid

    second = state.pid
    supervisor.stop()
    await asyncio.wait_for(run, 15)
    assert second is not None
    assert not Path(f"/proc/{second}").exists() or "Z" in Path(f"/proc/{second}/stat").read_text()


async def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, monkeypatch: object
) -> None:
    import lab.supervisor as module

    monkeypatch.setattr(module, "STOP_GRACE_SECONDS", 0.3)  # type: ignore[attr-defined]
    stubborn = service(tmp_path, "stubborn", "trap '' TERM; while :; do sleep 0.05; done")
    supervisor = Supervisor(tmp_path, [stubborn], tmp_path / "cgroups")
    run = asyncio.create_task(supervisor.run())
    await wait_for(lambda: supervisor.states[0].pid is not None)
    await asyncio.sleep(0.2)  # let the shell install its trap
    supervisor.stop()
    await asyncio.wait_for(run, 10)
    assert supervisor.states[0].last_exit == -signal.SIGKILL
