"""What the runtime reads from the host's filesystem: files inside an unmounted
snapshot, and a container's cgroup counters (OOM kills, CPU, memory, pids)."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CGROUP_ROOT = Path("/sys/fs/cgroup")


def snapshot_dirs(mounts: Sequence[Any]) -> list[Path]:
    """The directories of a snapshot's mounts, topmost first, so a file can be
    read the way overlayfs would show it, without mounting anything."""
    dirs: list[Path] = []
    for mount in mounts:
        if mount.type == "bind":
            dirs.append(Path(mount.source))
            continue
        upper: list[Path] = []
        lower: list[Path] = []
        for option in mount.options:
            key, _, value = option.partition("=")
            if key == "upperdir":
                upper = [Path(value)]
            elif key == "lowerdir":
                lower = [Path(p) for p in value.split(":")]
        dirs += upper + lower
    return dirs


def read_snapshot_file(dirs: list[Path], relative: str, limit: int = 1 << 20) -> str | None:
    """A file's text as the container will see it; None if absent or whited out."""
    for directory in dirs:
        path = directory / relative
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
            return None  # an overlay whiteout: deleted in an upper layer
        if stat.S_ISREG(info.st_mode):
            with open(path, "rb") as f:
                return f.read(limit).decode(errors="replace")
        return None
    return None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _keyed(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                values[key] = int(value)
    except OSError:
        pass
    return values


def oom_kills(cgroups_path: str) -> int:
    """How many processes the kernel OOM-killed in this cgroup (v1 or v2)."""
    relative = cgroups_path.lstrip("/")
    v1 = _keyed(CGROUP_ROOT / "memory" / relative / "memory.oom_control")
    if "oom_kill" in v1:
        return v1["oom_kill"]
    return _keyed(CGROUP_ROOT / relative / "memory.events").get("oom_kill", 0)


def cgroup_stats(cgroups_path: str) -> tuple[int, int, int, int]:
    """(cpu ns, memory usage, memory limit, pids) of a container's cgroup."""
    relative = cgroups_path.lstrip("/")
    v1_memory = CGROUP_ROOT / "memory" / relative
    if v1_memory.exists():
        limit = _read_int(v1_memory / "memory.limit_in_bytes")
        return (
            _read_int(CGROUP_ROOT / "cpuacct" / relative / "cpuacct.usage"),
            _read_int(v1_memory / "memory.usage_in_bytes"),
            limit,
            _read_int(CGROUP_ROOT / "pids" / relative / "pids.current"),
        )
    unified = CGROUP_ROOT / relative
    cpu_us = _keyed(unified / "cpu.stat").get("usage_usec", 0)
    return (
        cpu_us * 1000,
        _read_int(unified / "memory.current"),
        _read_int(unified / "memory.max"),
        _read_int(unified / "pids.current"),
    )
