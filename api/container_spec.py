"""The part of a task's spec that describes its container (Docker's ContainerSpec
and the resource limits of its TaskSpec), with Docker's JSON field names.

The runtime turns these into an OCI runtime spec; the API decodes them from
clients' JSON, so field names and defaults follow docker-api.md §3.
"""

from __future__ import annotations

import msgspec


class TmpfsOptions(msgspec.Struct, rename="pascal", omit_defaults=True):
    size_bytes: int = 0
    mode: int = 0


class Mount(msgspec.Struct, rename="pascal", omit_defaults=True):
    """A mount. Type is bind, volume or tmpfs; for a volume the caller has
    already resolved Source to a directory on the host."""

    target: str
    type: str = "volume"
    source: str = ""
    read_only: bool = False
    tmpfs_options: TmpfsOptions | None = None


class Limits(msgspec.Struct, omit_defaults=True):
    nano_cpus: int = msgspec.field(default=0, name="NanoCPUs")
    memory_bytes: int = msgspec.field(default=0, name="MemoryBytes")
    pids: int = msgspec.field(default=0, name="Pids")


class ContainerSpec(msgspec.Struct, rename="pascal", omit_defaults=True):
    image: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    command: list[str] = msgspec.field(default_factory=list)
    args: list[str] = msgspec.field(default_factory=list)
    env: list[str] = msgspec.field(default_factory=list)
    dir: str = ""
    user: str = ""
    groups: list[str] = msgspec.field(default_factory=list)
    hostname: str = ""
    hosts: list[str] = msgspec.field(default_factory=list)
    init: bool | None = None
    read_only: bool = False
    stop_signal: str = ""
    stop_grace_period: int | None = None  # nanoseconds, as Docker's JSON
    mounts: list[Mount] = msgspec.field(default_factory=list)
    sysctls: dict[str, str] = msgspec.field(default_factory=dict)
    capability_add: list[str] = msgspec.field(default_factory=list)
    capability_drop: list[str] = msgspec.field(default_factory=list)


DEFAULT_STOP_GRACE_NS = 10_000_000_000
