"""`lab up` and `lab down`: plan, record, apply — and undo everything on failure."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab import system
from lab.apply import SUPERVISOR_PIDFILE, apply_down_step, apply_up_step
from lab.configs import render_files
from lab.managers import ManagersNotReady, managers_up
from lab.plan import Observed, plan_down, plan_up
from lab.readiness import wait_until_ready
from lab.record import Record
from lab.seed import busybox_reference, seed_registry
from lab.spec import (
    DEFAULT_LAB_ROOT,
    LabSpec,
    LabSpecError,
    check_underlay_free,
    netns_belongs_to_lab,
    parse_underlay,
    pick_underlay,
    validate_lab_name,
)
from runtime.registry import RegistryError

METADATA_FILE = "lab.json"
REQUIRED_COMMANDS = (
    "ip",
    "nsenter",
    "unshare",
    "mount",
    "umount",
    "containerd",
    "runc",
    "containerd-shim-runc-v2",
    "docker-registry",
)
READY_TIMEOUT_SECONDS = 60.0

Progress = Callable[[str], None]


class LabError(RuntimeError):
    """A lab operation that failed; the message is meant for the user."""


def lab_root() -> Path:
    return Path(os.environ.get("SHOAL_LAB_ROOT", str(DEFAULT_LAB_ROOT)))


@contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """Serialises the choice of names and subnets between concurrent `lab up`s."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def read_metadata(directory: Path) -> dict[str, object] | None:
    try:
        data = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def spec_of(name: str, root: Path | None = None) -> LabSpec:
    """The spec of an existing lab, from its metadata."""
    root = root or lab_root()
    validate_lab_name(name)
    meta = read_metadata(root / name)
    if meta is None:
        raise LabError(f"no lab named {name!r} (see 'clusterctl lab ls')")
    return LabSpec(
        name=name,
        hosts=int(str(meta["hosts"])),
        underlay=ipaddress.IPv4Network(str(meta["underlay"])),
        root=root,
    )


def list_labs(root: Path | None = None) -> list[str]:
    root = root or lab_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and read_metadata(p) is not None)


def _claimed_underlays(root: Path) -> list[ipaddress.IPv4Network]:
    claimed = []
    for name in list_labs(root):
        meta = read_metadata(root / name) or {}
        try:
            claimed.append(ipaddress.IPv4Network(str(meta.get("underlay"))))
        except ValueError:
            continue
    return claimed


def check_prerequisites() -> None:
    missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
    if missing:
        raise LabError(
            f"missing commands: {', '.join(missing)} (run 'make demo' or 'make test' "
            "to install them)"
        )
    if os.geteuid() != 0:
        raise LabError("the lab creates network namespaces and must run as root")


def lab_up(
    name: str,
    hosts: int,
    underlay: str | None = None,
    *,
    root: Path | None = None,
    created_by: str = "clusterctl",
    progress: Progress = lambda _: None,
    managers: int = 0,
) -> LabSpec:
    """Build a lab and return once every host's containerd and the registry answer."""
    root = root or lab_root()
    validate_lab_name(name)
    if hosts < 1:
        raise LabSpecError(f"--hosts must be at least 1, not {hosts}")
    if not 0 <= managers <= hosts:
        raise LabSpecError(f"--managers must be between 0 and --hosts ({hosts}), not {managers}")
    check_prerequisites()
    with _root_lock(root):
        if (root / name).exists():
            raise LabError(
                f"lab {name!r} already exists (remove it with 'clusterctl lab down {name}')"
            )
        taken = system.root_routes() + _claimed_underlays(root)
        if underlay is None:
            net = pick_underlay(taken, hosts)
        else:
            net = parse_underlay(underlay)
            check_underlay_free(net, taken)
        spec = LabSpec(name=name, hosts=hosts, underlay=net, root=root)
        files = render_files(spec)  # validates everything before anything is created
        spec.directory.mkdir()
        _write_metadata(spec, "creating", created_by, managers)
    try:
        record = Record(spec.directory)
        progress(f"creating {hosts} hosts on {net}")
        for step in plan_up(spec, files):
            apply_up_step(step, record)
        progress("waiting for containerd on every host and the registry")
        wait_until_ready(spec, READY_TIMEOUT_SECONDS)
        progress(f"seeding the registry with {busybox_reference(spec)}")
        seed_registry(spec)
        if managers:
            progress(f"starting {managers} manager(s)")
            managers_up(spec, managers, progress)
        _write_metadata(spec, "up", created_by, managers)
    except BaseException as exc:
        progress(f"lab up failed ({exc}); removing what was created")
        lab_down(name, root=root)
        if isinstance(exc, system.CommandError | TimeoutError | RegistryError | ManagersNotReady):
            raise LabError(f"lab up failed: {exc}") from None
        raise
    return spec


def _write_metadata(spec: LabSpec, state: str, created_by: str, managers: int) -> None:
    meta = {
        "name": spec.name,
        "hosts": spec.hosts,
        "managers": managers,
        "underlay": str(spec.underlay),
        "state": state,
        "created_by": created_by,
        "owner_pid": os.getpid(),
    }
    tmp = spec.directory / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    tmp.replace(spec.directory / METADATA_FILE)


def observe(name: str, directory: Path) -> Observed:
    recorded = Record(directory).read()
    netns = system.list_netns()
    lab_netns = {n for n in netns if netns_belongs_to_lab(n, name)} | (recorded.netns & netns)
    ns_files = [system.NETNS_DIR / n for n in lab_netns]
    ns_files += sorted((directory / "ns").glob("*.mnt")) + sorted((directory / "ns").glob("*.uts"))
    cgroups = system.cgroup_dirs(name)
    pids = system.pids_in_namespaces(ns_files) | system.pids_in_cgroups(cgroups)
    supervisors = {p for p in pids if _is_supervisor(p, directory)}
    try:
        recorded_pid = int((directory / SUPERVISOR_PIDFILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded_pid = 0
    if recorded_pid and _is_supervisor(recorded_pid, directory):
        supervisors.add(recorded_pid)
    return Observed(
        netns=netns,
        root_links=system.root_links(),
        mounts=system.mount_points(),
        supervisor_pids=frozenset(supervisors),
        lab_pids=frozenset(pids | supervisors),
        cgroups=cgroups,
        directory_exists=directory.exists(),
    )


def _is_supervisor(pid: int, directory: Path) -> bool:
    cmdline = system.process_cmdline(pid)
    return "lab.supervisor" in cmdline and str(directory) in cmdline and system.process_alive(pid)


def lab_down(name: str, *, root: Path | None = None, progress: Progress = lambda _: None) -> bool:
    """Remove every trace of a lab; True if there was anything to remove.

    Observes and plans again after each pass, so a process that slipped in
    while we worked (a restart, a late fork) is caught by the next pass.
    """
    root = root or lab_root()
    validate_lab_name(name)
    directory = root / name
    found = False
    for _ in range(5):
        steps = plan_down(name, directory, Record(directory).read(), observe(name, directory))
        if not steps:
            return found
        found = True
        for step in steps:
            progress(f"{type(step).__name__}: {_describe(step)}")
            apply_down_step(step)
    leftover = plan_down(name, directory, Record(directory).read(), observe(name, directory))
    if leftover:
        raise LabError(f"lab {name!r} could not be removed completely: {leftover}")
    return found


def _describe(step: object) -> str:
    return ", ".join(f"{v}" for v in vars(step).values())
