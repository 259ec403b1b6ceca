"""How volumed starts SeaweedFS processes, and keeps them running."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from api.processes import MAX_BACKOFF_SECONDS, MIN_BACKOFF_SECONDS, next_backoff
from api.volume_options import validate_replication
from volumed.seaweed import (
    NodeLayout,
    ProcessSpec,
    Supervisor,
    filer_argv,
    master_argv,
    mount_argv,
    node_processes,
    volume_argv,
    weed_binary,
)

MASTERS = ("10.0.0.1:9333", "10.0.0.2:9333", "10.0.0.3:9333")


def layout(role: str = "manager", masters: tuple[str, ...] = MASTERS) -> NodeLayout:
    return NodeLayout(data_dir=Path("/d"), ip="10.0.0.1", masters=masters, role=role)


def test_masters_on_managers_form_a_raft_group_of_all_masters() -> None:
    argv = master_argv("weed", layout())
    assert argv[:2] == ("weed", "master")
    assert "-peers=10.0.0.1:9333,10.0.0.2:9333,10.0.0.3:9333" in argv
    assert "-ip=10.0.0.1" in argv and "-port=9333" in argv
    assert "-mdir=/d/master" in argv
    assert "-defaultReplication=001" in argv
    assert "-telemetry=false" in argv


def test_a_single_master_skips_the_raft_quorum_wait() -> None:
    assert "-peers=none" in master_argv("weed", layout(masters=("10.0.0.1:9333",)))


def test_volume_server_registers_with_every_master() -> None:
    argv = volume_argv("weed", layout())
    assert argv[:2] == ("weed", "volume")
    assert f"-mserver={','.join(MASTERS)}" in argv
    assert "-dir=/d/volume" in argv and "-port=8080" in argv


def test_filer_keeps_its_metadata_and_socket_under_the_data_dir() -> None:
    argv = filer_argv("weed", layout())
    assert "-defaultStoreDir=/d/filer" in argv
    assert "-localSocket=/d/run/filer.sock" in argv  # not /tmp, shared by lab hosts
    assert f"-master={','.join(MASTERS)}" in argv


def test_only_managers_run_a_master() -> None:
    assert [p.name for p in node_processes("weed", layout("manager"))] == [
        "master",
        "volume",
        "filer",
    ]
    assert [p.name for p in node_processes("weed", layout("worker"))] == ["volume", "filer"]


def test_mount_argv_mounts_the_volume_directory_with_its_replication() -> None:
    argv = mount_argv(
        "weed", "10.0.0.1:8888", "db", Path("/m/db"), "010", Path("/run"), Path("/c/db")
    )
    assert argv[:2] == ("weed", "mount")
    assert {
        "-filer=10.0.0.1:8888",
        "-filer.path=/shoal/volumes/db",
        "-dir=/m/db",
        "-replication=010",
        "-localSocket=/run/mount-db.sock",
        "-cacheDir=/c/db",
    } <= set(argv)


@pytest.mark.parametrize("replication", ["000", "001", "010", "100", "200"])
def test_valid_replications(replication: str) -> None:
    assert validate_replication(replication) == replication


@pytest.mark.parametrize("replication", ["", "1", "01", "0001", "abc", "0x1", " 001"])
def test_invalid_replications_say_what_is_expected(replication: str) -> None:
    with pytest.raises(ValueError, match="three digits"):
        validate_replication(replication)


def test_backoff_grows_while_a_process_dies_young_and_resets_after_a_healthy_run() -> None:
    assert next_backoff(0.0, 0.1) == MIN_BACKOFF_SECONDS
    assert next_backoff(MIN_BACKOFF_SECONDS, 0.1) == 2 * MIN_BACKOFF_SECONDS
    assert next_backoff(MAX_BACKOFF_SECONDS, 0.1) == MAX_BACKOFF_SECONDS
    assert next_backoff(MAX_BACKOFF_SECONDS, 60.0) == MIN_BACKOFF_SECONDS


def test_weed_binary_is_found_in_this_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOAL_WEED", raising=False)
    assert os.access(weed_binary(), os.X_OK)
    monkeypatch.setenv("SHOAL_WEED", "/opt/weed")
    assert weed_binary() == "/opt/weed"


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_supervisor_restarts_a_killed_process_and_stops_it_by_pid(tmp_path: Path) -> None:
    spec = ProcessSpec("sleeper", ("sleep", "60"), tmp_path / "logs" / "sleeper.log")
    supervisor = Supervisor([spec])
    run = asyncio.create_task(supervisor.run())
    state = supervisor.states[0]
    try:
        await wait_for(lambda: state.pid is not None)
        first = state.pid
        assert first is not None and state.up
        os.kill(first, signal.SIGKILL)
        await wait_for(lambda: state.pid not in (None, first))
        assert state.restarts == 1 and state.last_exit == -signal.SIGKILL
        second = state.pid
    finally:
        await supervisor.stop()
        await asyncio.wait_for(run, 15)
    assert not state.up
    assert second is not None and not Path(f"/proc/{second}").exists()
