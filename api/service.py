"""Services: the spec users write and the object the manager serves."""

from __future__ import annotations

import msgspec

from api.base import ZERO_TIME, Annotations, Meta, Obj, Version, always, always_new
from api.network import Endpoint, EndpointSpec, NetworkAttachmentConfig
from api.task import TaskSpec

FAILURE_ACTIONS = ("pause", "continue", "rollback")
UPDATE_ORDERS = ("stop-first", "start-first")
UPDATE_STATES = (
    "updating",
    "paused",
    "completed",
    "rollback_started",
    "rollback_paused",
    "rollback_completed",
)


class ReplicatedService(Obj):
    # None (absent) differs from 0: normalisation turns absent into 1.
    replicas: int | None = None


class GlobalService(Obj):
    pass


class ReplicatedJob(Obj):
    max_concurrent: int | None = None
    total_completions: int | None = None


class GlobalJob(Obj):
    pass


class ServiceMode(Obj):
    """Exactly one field is set once the spec is normalised."""

    replicated: ReplicatedService | None = None
    global_: GlobalService | None = msgspec.field(default=None, name="Global")
    replicated_job: ReplicatedJob | None = None
    global_job: GlobalJob | None = None

    @property
    def kinds(self) -> list[str]:
        """The modes set, named as `docker service create --mode` names them."""
        named = [
            ("replicated", self.replicated),
            ("global", self.global_),
            ("replicated-job", self.replicated_job),
            ("global-job", self.global_job),
        ]
        return [name for name, mode in named if mode is not None]

    @property
    def kind(self) -> str:
        """The single mode's name, or "" when none or several are set."""
        kinds = self.kinds
        return kinds[0] if len(kinds) == 1 else ""

    @property
    def is_job(self) -> bool:
        return self.replicated_job is not None or self.global_job is not None


class UpdateConfig(Obj):
    """Delay and Monitor are nanoseconds. Go omits only Delay, FailureAction
    and Monitor when empty."""

    parallelism: int = always(0)
    delay: int = 0
    failure_action: str = ""
    monitor: int = 0
    max_failure_ratio: float = always(0.0)
    order: str = always("")


class ServiceSpec(Annotations):
    task_template: TaskSpec = always_new(TaskSpec)
    mode: ServiceMode = always_new(ServiceMode)
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    networks: list[NetworkAttachmentConfig] = msgspec.field(default_factory=list)  # deprecated
    endpoint_spec: EndpointSpec | None = None


class UpdateStatus(Obj):
    state: str = ""
    started_at: str | None = None
    completed_at: str | None = None
    message: str = ""


class ServiceStatus(Obj):
    running_tasks: int = always(0)
    desired_tasks: int = always(0)
    completed_tasks: int = always(0)


class JobStatus(Obj):
    job_iteration: Version = always_new(Version)
    last_execution: str = always(ZERO_TIME)


class Service(Meta):
    spec: ServiceSpec = always_new(ServiceSpec)
    previous_spec: ServiceSpec | None = None
    endpoint: Endpoint = always_new(Endpoint)
    update_status: UpdateStatus | None = None
    service_status: ServiceStatus | None = None
    job_status: JobStatus | None = None


class ServiceCreateResponse(Obj):
    id: str = always("", name="ID")
    warnings: list[str] = msgspec.field(default_factory=list)


class ServiceUpdateResponse(Obj):
    warnings: list[str] = always_new(list)
