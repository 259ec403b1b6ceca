"""The part of a task's spec that describes its container (Docker's ContainerSpec
and the resource limits of its TaskSpec), with Docker's JSON field names.

The runtime turns these into an OCI runtime spec; the API decodes them from
clients' JSON, so field names and defaults follow docker-api.md §3.
"""

from __future__ import annotations

import msgspec

from api.base import Driver, always


class TmpfsOptions(msgspec.Struct, rename="pascal", omit_defaults=True):
    size_bytes: int = 0
    mode: int = 0


class BindOptions(msgspec.Struct, rename="pascal", omit_defaults=True):
    propagation: str = ""
    non_recursive: bool = False


class VolumeOptions(msgspec.Struct, rename="pascal", omit_defaults=True):
    no_copy: bool = False
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    driver_config: Driver | None = None


class Mount(msgspec.Struct, rename="pascal", omit_defaults=True):
    """A mount. Type is bind, volume or tmpfs; for a volume the caller has
    already resolved Source to a directory on the host."""

    target: str
    # always(): Docker writes the type, and "volume" is not Go's empty value.
    type: str = always("volume")
    source: str = ""
    read_only: bool = False
    tmpfs_options: TmpfsOptions | None = None
    consistency: str = ""
    bind_options: BindOptions | None = None
    volume_options: VolumeOptions | None = None


class Limits(msgspec.Struct, omit_defaults=True):
    nano_cpus: int = msgspec.field(default=0, name="NanoCPUs")
    memory_bytes: int = msgspec.field(default=0, name="MemoryBytes")
    pids: int = msgspec.field(default=0, name="Pids")


class DNSConfig(msgspec.Struct, rename="pascal", omit_defaults=True):
    nameservers: list[str] = msgspec.field(default_factory=list)
    search: list[str] = msgspec.field(default_factory=list)
    options: list[str] = msgspec.field(default_factory=list)


class HealthConfig(msgspec.Struct, rename="pascal", omit_defaults=True):
    """Durations in nanoseconds; Test is ["NONE"], ["CMD", …] or ["CMD-SHELL", cmd]."""

    test: list[str] = msgspec.field(default_factory=list)
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    retries: int = 0


# Go gives these no `omitempty`, so every field is written.
class CredentialSpec(msgspec.Struct, rename="pascal"):
    config: str = ""
    file: str = ""
    registry: str = ""


class SELinuxContext(msgspec.Struct, rename="pascal"):
    disable: bool = False
    user: str = ""
    role: str = ""
    type: str = ""
    level: str = ""


class Privileges(msgspec.Struct, rename="pascal", omit_defaults=True):
    credential_spec: CredentialSpec | None = None
    se_linux_context: SELinuxContext | None = msgspec.field(default=None, name="SELinuxContext")


class FileTarget(msgspec.Struct, rename="pascal"):
    """Where a secret or config appears in the container; Mode is the file mode
    (decimal in JSON, e.g. 292 for 0444)."""

    name: str = ""
    uid: str = msgspec.field(default="", name="UID")
    gid: str = msgspec.field(default="", name="GID")
    mode: int = 0


class SecretReference(msgspec.Struct, rename="pascal", omit_defaults=True):
    file: FileTarget | None = None
    secret_id: str = always("", name="SecretID")
    secret_name: str = always("")


class ConfigReferenceRuntimeTarget(msgspec.Struct):
    """A config used by the runtime itself (a credential spec), not a file."""


class ConfigReference(msgspec.Struct, rename="pascal", omit_defaults=True):
    file: FileTarget | None = None
    runtime: ConfigReferenceRuntimeTarget | None = None
    config_id: str = always("", name="ConfigID")
    config_name: str = always("")


class Ulimit(msgspec.Struct, rename="pascal"):
    name: str = ""
    hard: int = 0
    soft: int = 0


class ContainerSpec(msgspec.Struct, rename="pascal", omit_defaults=True):
    # Image defaults to "" (Go's omitempty) so that a spec without one decodes
    # and validation can answer with Docker's message instead of a JSON error.
    image: str = ""
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
    privileges: Privileges | None = None
    tty: bool = msgspec.field(default=False, name="TTY")
    open_stdin: bool = False
    healthcheck: HealthConfig | None = None
    dns_config: DNSConfig | None = msgspec.field(default=None, name="DNSConfig")
    secrets: list[SecretReference] = msgspec.field(default_factory=list)
    configs: list[ConfigReference] = msgspec.field(default_factory=list)
    isolation: str = ""
    ulimits: list[Ulimit] = msgspec.field(default_factory=list)


DEFAULT_STOP_GRACE_NS = 10_000_000_000
