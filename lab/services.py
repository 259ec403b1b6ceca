"""Stopping and starting one supervised process of a lab (for tests and the
benchmarks: a manager that stays down, a node that fails)."""

from __future__ import annotations

import os
import signal
import time

from lab.spec import LabSpec
from lab.supervisor import held_file, read_status
from lab.system import process_alive


def service_pid(spec: LabSpec, service: str) -> int | None:
    pid = read_status(spec.directory).get(service, {}).get("pid")
    return pid if isinstance(pid, int) and process_alive(pid) else None


def stop_service(spec: LabSpec, service: str, sig: int = signal.SIGKILL) -> None:
    """Take a service down and keep it down until start_service."""
    marker = held_file(spec.directory, service)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    pid = service_pid(spec, service)
    if pid is not None:
        os.kill(pid, sig)
        _wait(lambda: not process_alive(pid), f"{service} did not stop")


def start_service(spec: LabSpec, service: str) -> int:
    held_file(spec.directory, service).unlink(missing_ok=True)
    return _wait(lambda: service_pid(spec, service), f"{service} did not start")


def kill_service(spec: LabSpec, service: str) -> int:
    """kill -9 a service and let the supervisor restart it; the new PID."""
    pid = service_pid(spec, service)
    if pid is None:
        raise RuntimeError(f"{service} is not running")
    os.kill(pid, signal.SIGKILL)
    return _wait(
        lambda: (p := service_pid(spec, service)) not in (None, pid) and p,
        f"{service} was not restarted",
    )


def _wait(check: object, what: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()  # type: ignore[operator]
        if result:
            return int(result)
        time.sleep(0.05)
    raise TimeoutError(what)
