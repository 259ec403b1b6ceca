"""Tasks and the TaskSpec a service stamps them from (docker-api.md §3, §5)."""

from __future__ import annotations

import enum

import msgspec

from api.base import (
    ZERO_TIME,
    Driver,
    GenericResource,
    Meta,
    Obj,
    Platform,
    Resources,
    Version,
    always,
    always_new,
)
from api.container_spec import ContainerSpec, Limits
from api.errors import InvalidArgument
from api.network import NetworkAttachment, NetworkAttachmentConfig, PortConfig

RESTART_CONDITIONS = ("none", "on-failure", "any")
RUNTIME_CONTAINER = "container"


class TaskState(enum.IntEnum):
    """Swarmkit's task states. The numbers order them: an observed state only
    moves forward, and a manager stops a task by raising its desired state."""

    NEW = 0
    PENDING = 64
    ALLOCATED = 128  # in Docker's enum, never set
    ASSIGNED = 192
    ACCEPTED = 256
    PREPARING = 320
    READY = 384
    STARTING = 448
    RUNNING = 512
    COMPLETE = 576
    SHUTDOWN = 640
    FAILED = 704
    REJECTED = 768
    REMOVE = 800  # a desired state only
    ORPHANED = 832

    def to_json(self) -> str:
        """The lowercase name Docker's JSON uses ("running")."""
        return self.name.lower()

    @classmethod
    def from_json(cls, name: str) -> TaskState:
        """The state a JSON name stands for; InvalidArgument if it names none."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise InvalidArgument(f"invalid task state {name!r}") from None

    @property
    def is_terminal(self) -> bool:
        """True once the task can never run (again)."""
        return self > TaskState.RUNNING


class ResourceRequirements(Obj):
    limits: Limits | None = None
    reservations: Resources | None = None


class RestartPolicy(Obj):
    """Delay and Window are nanoseconds; unset fields are None (Go pointers)."""

    condition: str = ""
    delay: int | None = None
    max_attempts: int | None = None
    window: int | None = None


class SpreadOver(Obj):
    spread_descriptor: str = always("")


class PlacementPreference(Obj):
    spread: SpreadOver | None = None


class Placement(Obj):
    constraints: list[str] = msgspec.field(default_factory=list)
    preferences: list[PlacementPreference] = msgspec.field(default_factory=list)
    max_replicas: int = 0
    platforms: list[Platform] = msgspec.field(default_factory=list)


class PluginPrivilege(msgspec.Struct, omit_defaults=True):
    name: str = ""
    description: str = ""
    value: list[str] = msgspec.field(default_factory=list)


class PluginSpec(msgspec.Struct, omit_defaults=True):
    """Accepted so such specs decode; Shoal runs containers only (lowercase keys:
    Go generates this type from protobuf)."""

    name: str = ""
    remote: str = ""
    privileges: list[PluginPrivilege] = msgspec.field(default_factory=list)
    disabled: bool = False
    env: list[str] = msgspec.field(default_factory=list)


class TaskSpec(Obj):
    container_spec: ContainerSpec | None = None
    plugin_spec: PluginSpec | None = None
    resources: ResourceRequirements | None = None
    restart_policy: RestartPolicy | None = None
    placement: Placement | None = None
    networks: list[NetworkAttachmentConfig] = msgspec.field(default_factory=list)
    log_driver: Driver | None = None
    force_update: int = always(0)
    runtime: str = ""


class ContainerStatus(Obj):
    container_id: str = msgspec.field(default="", name="ContainerID")
    pid: int = msgspec.field(default=0, name="PID")
    exit_code: int = 0


class PortStatus(Obj):
    ports: list[PortConfig] = msgspec.field(default_factory=list)


class TaskStatus(Obj):
    """What the agent last reported. State is a lowercase TaskState name."""

    timestamp: str = always(ZERO_TIME)
    state: str = ""
    message: str = ""
    err: str = ""
    container_status: ContainerStatus | None = None
    port_status: PortStatus = always_new(PortStatus)


class Task(Meta):
    name: str = ""
    labels: dict[str, str] = always_new(dict)
    spec: TaskSpec = always_new(TaskSpec)
    service_id: str = msgspec.field(default="", name="ServiceID")
    slot: int = 0
    node_id: str = msgspec.field(default="", name="NodeID")
    status: TaskStatus = always_new(TaskStatus)
    desired_state: str = ""
    networks_attachments: list[NetworkAttachment] = msgspec.field(default_factory=list)
    generic_resources: list[GenericResource] = msgspec.field(default_factory=list)
    job_iteration: Version | None = None
