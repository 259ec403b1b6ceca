"""What a lab looks like now, for `lab ls`, `lab status` and the tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from lab.apply import SUPERVISOR_PIDFILE
from lab.configs import enter_host
from lab.lifecycle import lab_root, read_metadata, spec_of
from lab.readiness import HostHealth, lab_health
from lab.spec import LabSpec, resolve_host
from lab.supervisor import read_status
from lab.system import process_alive, process_cmdline


@dataclass(frozen=True)
class LabStatus:
    spec: LabSpec
    state: str  # up | degraded | creating | broken
    supervisor_pid: int | None
    hosts: list[HostHealth]
    registry_ok: bool
    services: dict[str, dict[str, int | None]]


def supervisor_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / SUPERVISOR_PIDFILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    alive = process_alive(pid) and "lab.supervisor" in process_cmdline(pid)
    return pid if alive else None


def lab_status(name: str, root: Path | None = None) -> LabStatus:
    spec = spec_of(name, root or lab_root())
    meta = read_metadata(spec.directory) or {}
    hosts, registry_ok = asyncio.run(lab_health(spec))
    pid = supervisor_pid(spec.directory)
    healthy = pid is not None and registry_ok and all(h.containerd_version for h in hosts)
    if meta.get("state") == "creating":
        state = "creating"
    elif healthy:
        state = "up"
    elif pid is None:
        state = "broken"
    else:
        state = "degraded"
    return LabStatus(spec, state, pid, hosts, registry_ok, read_status(spec.directory))


def exec_argv(name: str, host: str, command: list[str], root: Path | None = None) -> list[str]:
    """The argv that runs `command` inside a host of a lab."""
    spec = spec_of(name, root or lab_root())
    target = resolve_host(spec, host)
    if not target.mount_ns_file.exists():
        raise FileNotFoundError(f"host {target.name} of lab {name!r} has no namespaces")
    return [*enter_host(target), *command]
