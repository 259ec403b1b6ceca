"""Builds the OCI runtime spec of a container — a pure function of the task's
ContainerSpec, the image's config and the image's /etc/passwd and /etc/group.

Defaults follow what dockerd gives a container: Docker's default capability
set, masked and read-only /proc paths, a private /dev, and the image's
Entrypoint/Cmd/Env/WorkingDir/User merged with the spec the way Docker does.
"""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.container_spec import ContainerSpec, Limits

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD_US = 100_000
INIT_PATH = "/sbin/docker-init"

# Docker's default bounding set (moby oci/caps/defaults.go).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


class SpecError(ValueError):
    """The spec cannot be turned into a container; the message says why."""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config a container starts from."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> ImageConfig:
        inner = config.get("config") or {}
        return cls(
            entrypoint=list(inner.get("Entrypoint") or []),
            cmd=list(inner.get("Cmd") or []),
            env=list(inner.get("Env") or []),
            working_dir=inner.get("WorkingDir") or "",
            user=inner.get("User") or "",
            stop_signal=inner.get("StopSignal") or "",
        )


@dataclass(frozen=True)
class RuntimeMounts:
    """Host files the runtime prepared for this container."""

    hosts_file: Path | None = None
    hostname_file: Path | None = None
    resolv_conf: Path | None = None
    init_binary: Path | None = None


def merge_args(spec: ContainerSpec, image: ImageConfig) -> list[str]:
    """Docker's rule: Command replaces the Entrypoint (and drops the image's Cmd);
    Args replace the Cmd."""
    entrypoint = spec.command or image.entrypoint
    cmd = spec.args if spec.command else spec.args or image.cmd
    args = [*entrypoint, *cmd]
    if not args:
        raise SpecError(f"no command given and image {spec.image} has no Entrypoint or Cmd")
    return args


def merge_env(spec: ContainerSpec, image: ImageConfig) -> list[str]:
    merged: dict[str, str] = {}
    for item in [*image.env, *spec.env]:
        key, sep, value = item.partition("=")
        merged[key] = f"{key}{sep}{value}"
    if "PATH" not in merged:
        merged["PATH"] = DEFAULT_PATH
    return list(merged.values())


def _table(text: str | None) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(
    user: str, passwd: str | None, group: str | None, extra_groups: list[str]
) -> dict[str, Any]:
    """`name`, `uid`, `name:group` or `uid:gid` to the OCI user, through the
    image's /etc/passwd and /etc/group (Docker's getent-like lookup)."""
    name, _, grp = user.partition(":")
    users = _table(passwd)
    groups = _table(group)
    uid, gid = 0, 0
    username = ""
    if name:
        row = next((r for r in users if len(r) > 3 and name in (r[0], r[2])), None)
        if row is not None:
            username, uid, gid = row[0], int(row[2]), int(row[3])
        elif name.isdigit():
            uid = int(name)
        else:
            raise SpecError(f"unable to find user {name}: no matching entries in passwd file")
    if grp:
        gid = _group_id(grp, groups)
    additional = sorted(
        {_group_id(g, groups) for g in extra_groups}
        | {
            int(r[2])
            for r in groups
            if username and len(r) > 3 and username in r[3].split(",") and r[2].isdigit()
        }
    )
    result: dict[str, Any] = {"uid": uid, "gid": gid}
    if additional:
        result["additionalGids"] = additional
    return result


def _group_id(name: str, groups: list[list[str]]) -> int:
    row = next((r for r in groups if len(r) > 2 and name in (r[0], r[2])), None)
    if row is not None:
        return int(row[2])
    if name.isdigit():
        return int(name)
    raise SpecError(f"unable to find group {name}: no matching entries in group file")


def capabilities(add: list[str], drop: list[str]) -> list[str]:
    def norm(cap: str) -> str:
        cap = cap.upper()
        return cap if cap.startswith("CAP_") else f"CAP_{cap}"

    adds = {norm(c) for c in add}
    drops = {norm(c) for c in drop}
    if "CAP_ALL" in drops:
        base: set[str] = set()
    else:
        base = set(DEFAULT_CAPABILITIES) - drops
    return sorted(base | (adds - {"CAP_ALL"}))


def _default_mounts() -> list[dict[str, Any]]:
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]


def _spec_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    mounts = []
    for m in spec.mounts:
        if not m.target.startswith("/"):
            raise SpecError(f"invalid mount target {m.target!r}: must be an absolute path")
        if m.type in ("bind", "volume"):
            if not m.source.startswith("/"):
                raise SpecError(
                    f"invalid mount source {m.source!r} for {m.target}: "
                    "must be an absolute host path"
                )
            mounts.append(
                {
                    "destination": m.target,
                    "type": "bind",
                    "source": m.source,
                    "options": ["rbind", "ro" if m.read_only else "rw"],
                }
            )
        elif m.type == "tmpfs":
            options = ["nosuid", "nodev", "noexec"]
            if m.tmpfs_options and m.tmpfs_options.size_bytes:
                options.append(f"size={m.tmpfs_options.size_bytes}")
            if m.tmpfs_options and m.tmpfs_options.mode:
                options.append(f"mode={m.tmpfs_options.mode:o}")
            if m.read_only:
                options.append("ro")
            mounts.append(
                {"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options}
            )
        else:
            raise SpecError(f"invalid mount type {m.type!r} for {m.target}")
    return mounts


def _file_mount(destination: str, source: Path, read_only: bool = False) -> dict[str, Any]:
    return {
        "destination": destination,
        "type": "bind",
        "source": str(source),
        "options": ["rbind", "ro" if read_only else "rw"],
    }


def _resources(limits: Limits) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if limits.memory_bytes < 0 or limits.nano_cpus < 0 or limits.pids < 0:
        raise SpecError("resource limits must not be negative")
    if limits.memory_bytes:
        resources["memory"] = {"limit": limits.memory_bytes}
    if limits.nano_cpus:
        quota = limits.nano_cpus * CPU_PERIOD_US // 1_000_000_000
        resources["cpu"] = {"quota": max(quota, 1000), "period": CPU_PERIOD_US}
    if limits.pids:
        resources["pids"] = {"limit": limits.pids}
    return resources


def build_spec(
    spec: ContainerSpec,
    image: ImageConfig,
    *,
    limits: Limits,
    cgroups_path: str,
    netns_path: str | None,
    passwd: str | None,
    group: str | None,
    files: RuntimeMounts,
) -> dict[str, Any]:
    args = merge_args(spec, image)
    if spec.init:
        if files.init_binary is None:
            raise SpecError("Init was asked for but no init binary is available")
        args = [INIT_PATH, "--", *args]
    caps = capabilities(spec.capability_add, spec.capability_drop)
    mounts = _default_mounts() + _spec_mounts(spec)
    for destination, source in (
        ("/etc/hosts", files.hosts_file),
        ("/etc/hostname", files.hostname_file),
        ("/etc/resolv.conf", files.resolv_conf),
    ):
        if source is not None:
            mounts.append(_file_mount(destination, source))
    if spec.init and files.init_binary is not None:
        mounts.append(_file_mount(INIT_PATH, files.init_binary, read_only=True))
    network: dict[str, str] = {"type": "network"}
    if netns_path:
        network["path"] = netns_path
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": resolve_user(spec.user or image.user, passwd, group, spec.groups),
            "args": args,
            "env": merge_env(spec, image),
            "cwd": spec.dir or image.working_dir or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": spec.read_only},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "resources": _resources(limits),
            "cgroupsPath": cgroups_path,
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                network,
            ],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            "sysctl": dict(spec.sysctls),
        },
    }


def process_spec(container_spec: dict[str, Any], args: list[str]) -> dict[str, Any]:
    """The process of an exec in a running container: the container's user,
    env and cwd with other arguments."""
    process = dict(container_spec["process"])
    process["args"] = args
    return process


def hosts_file(hostname: str, extra: list[str]) -> str:
    """/etc/hosts as Docker writes it, plus the spec's Hosts ("IP name [alias...]")."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if hostname:
        lines.append(f"127.0.1.1\t{hostname}")
    for entry in extra:
        parts = entry.split()
        if len(parts) < 2:
            raise SpecError(f"invalid Hosts entry {entry!r}: want 'IP hostname [alias...]'")
        lines.append("\t".join([parts[0], " ".join(parts[1:])]))
    return "\n".join(lines) + "\n"


def parse_signal(name: str) -> int:
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = f"SIG{text}"
    try:
        return int(signals.Signals[text])
    except KeyError:
        raise SpecError(f"invalid signal {name!r}") from None
