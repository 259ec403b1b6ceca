"""The lab's supervisor: keeps each host's processes running until `lab down`.

Run as `python -m lab.supervisor LAB_DIRECTORY`. It starts every service in
`services.json` inside its host, restarts one that dies (with a growing pause,
so a process that cannot start does not spin), starts services added to the
file on SIGHUP, and on SIGTERM stops them all —
SIGTERM, a grace period, then SIGKILL — before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from api.processes import next_backoff, stop_process
from lab.configs import PIDS_CGROUP, ServiceSpec, load_services

STATUS_FILE = "services-status.json"
PIDFILE = "supervisor.pid"
STOP_GRACE_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 5.0

# Joins the pids cgroup before exec, so the process and everything it forks
# (containerd's shims, containers) is found and stopped by `lab down`.
_JOIN_CGROUP = 'echo $$ > "$0/cgroup.procs" && exec "$@"'


@dataclass
class ServiceState:
    spec: ServiceSpec
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    started_at: float = 0.0
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self, lab_directory: Path, services: list[ServiceSpec], cgroup_root: Path = PIDS_CGROUP
    ) -> None:
        self.lab_directory = lab_directory
        self.cgroup_root = cgroup_root
        self.states = [ServiceState(s) for s in services]
        self._stopping = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            for state in self.states:
                group.create_task(self._keep_running(state))
            await self._stopping.wait()
            await asyncio.gather(*(self._stop(s) for s in self.states))

    def stop(self) -> None:
        self._stopping.set()

    def add(self, services: list[ServiceSpec]) -> None:
        """Start the services not running yet (`lab up` adds managers once the
        first one has a cluster to join)."""
        known = {s.spec.name for s in self.states}
        for spec in services:
            if spec.name not in known and self._group is not None:
                state = ServiceState(spec)
                self.states.append(state)
                self._group.create_task(self._keep_running(state))

    async def _keep_running(self, state: ServiceState) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            while held_file(self.lab_directory, state.spec.name).exists():
                # A test holds this service down (a stopped manager, say).
                with contextlib.suppress(TimeoutError):  # not wait_for: 3.11's can swallow a cancel
                    async with asyncio.timeout(0.2):
                        await self._stopping.wait()
                if self._stopping.is_set():
                    return
            await self._start(state)
            assert state.process is not None
            state.last_exit = await state.process.wait()
            state.pid = None
            self._write_status()
            if self._stopping.is_set():
                return
            ran = time.monotonic() - state.started_at
            backoff = next_backoff(backoff, ran, longest=MAX_BACKOFF_SECONDS)
            print(
                f"{state.spec.name} exited with {state.last_exit}; restarting in {backoff}s",
                flush=True,
            )
            with contextlib.suppress(TimeoutError):  # not wait_for: 3.11's can swallow a cancel
                async with asyncio.timeout(backoff):
                    await self._stopping.wait()
            state.restarts += 1

    async def _start(self, state: ServiceState) -> None:
        cgroup = self.cgroup_root / state.spec.cgroup
        cgroup.mkdir(parents=True, exist_ok=True)
        with open(state.spec.log, "ab") as log:
            state.process = await asyncio.create_subprocess_exec(
                "sh",
                "-c",
                _JOIN_CGROUP,
                str(cgroup),
                *state.spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        state.pid = state.process.pid
        state.started_at = time.monotonic()
        self._write_status()

    async def _stop(self, state: ServiceState) -> None:
        await stop_process(state.process, STOP_GRACE_SECONDS)

    def _write_status(self) -> None:
        status = {
            s.spec.name: {"pid": s.pid, "restarts": s.restarts, "last_exit": s.last_exit}
            for s in self.states
        }
        tmp = self.lab_directory / (STATUS_FILE + ".tmp")
        tmp.write_text(json.dumps(status, indent=2), encoding="utf-8")
        tmp.replace(self.lab_directory / STATUS_FILE)


def held_file(lab_directory: Path, service: str) -> Path:
    """While this file exists the supervisor does not (re)start the service."""
    return lab_directory / "held" / service.replace("/", "_")


def read_status(lab_directory: Path) -> dict[str, dict[str, int | None]]:
    try:
        data = json.loads((lab_directory / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def _main(lab_directory: Path) -> None:
    supervisor = Supervisor(lab_directory, load_services(lab_directory))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: supervisor.add(load_services(lab_directory)))
    await supervisor.run()


def main() -> None:
    lab_directory = Path(sys.argv[1])
    (lab_directory / PIDFILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
    asyncio.run(_main(lab_directory))


if __name__ == "__main__":
    main()
