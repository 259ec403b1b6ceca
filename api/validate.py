"""Validation and normalisation of user-written specs, as Docker does them.

Docker checks a service spec twice: moby converts it to swarmkit's form
(defaulting the mode, spelling enums, rejecting unknown enum values with plain
messages), then swarmkit validates it and its messages reach the client wrapped
as `rpc error: code = InvalidArgument desc = …`. The functions here reproduce
both steps and their messages. They are pure: the input is never modified, and
anything needing the store (resolving network and secret names, naming an
unnamed service, port conflicts between services) is left to the server.
"""

from __future__ import annotations

import copy
import re

from api.cluster import SECOND
from api.constraints import parse_constraints
from api.container_spec import DEFAULT_STOP_GRACE_NS, ContainerSpec, DNSConfig, FileTarget
from api.errors import InvalidArgument, NotImplemented_
from api.network import PROTOCOLS, PUBLISH_MODES, RESOLUTION_MODES
from api.service import (
    FAILURE_ACTIONS,
    UPDATE_ORDERS,
    ReplicatedService,
    ServiceSpec,
    UpdateConfig,
)
from api.task import (
    RESTART_CONDITIONS,
    RUNTIME_CONTAINER,
    Placement,
    ResourceRequirements,
    RestartPolicy,
    TaskSpec,
)
from api.validate_cluster import (
    normalize_node_spec,
    normalize_swarm_spec,
    validate_config_spec,
    validate_network_create,
    validate_secret_spec,
)
from api.validate_cluster import rpc_invalid as _rpc

__all__ = [
    "insert_defaults",
    "normalize_node_spec",
    "normalize_service_spec",
    "normalize_swarm_spec",
    "validate_config_spec",
    "validate_network_create",
    "validate_secret_spec",
]

DEFAULT_RESTART_DELAY = 5 * SECOND
DEFAULT_UPDATE_MONITOR = 5 * SECOND
MOUNT_TYPES = ("bind", "volume", "tmpfs")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IMAGE = re.compile(
    rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::\w[\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
_SERVICE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?")


# --- services -----------------------------------------------------------------


def normalize_service_spec(spec: ServiceSpec) -> ServiceSpec:
    """The spec as Docker stores it, or InvalidArgument (400) / NotImplemented_
    (501, non-container runtimes) with Docker's message."""
    spec = copy.deepcopy(spec)
    _normalize_mode(spec)
    _normalize_task(spec.task_template)
    for config, kind in ((spec.update_config, "update"), (spec.rollback_config, "rollback")):
        if config is not None:
            _normalize_update(config, kind)
    if spec.endpoint_spec is not None:
        ep = spec.endpoint_spec
        if ep.mode == "":
            ep.mode = "vip"
        elif ep.mode not in RESOLUTION_MODES:
            raise InvalidArgument(f'invalid resolution mode: "{ep.mode}"')
        for port in ep.ports:
            # moby looks enum names up upper-cased, so "TCP" is accepted.
            port.protocol = _enum(port.protocol, "tcp", PROTOCOLS, "Protocol")
            port.publish_mode = _enum(port.publish_mode, "ingress", PUBLISH_MODES, "PublishMode")
    _validate_service(spec)
    return spec


def _enum(value: str, default: str, allowed: tuple[str, ...], what: str) -> str:
    if value == "":
        return default
    if value.lower() not in allowed:
        raise InvalidArgument(f'invalid {what}: "{value}"')
    return value.lower()


def _normalize_mode(spec: ServiceSpec) -> None:
    mode = spec.mode
    if len(mode.kinds) > 1:
        raise InvalidArgument("must specify only one service mode")
    if mode.replicated_job is not None:
        job = mode.replicated_job
        if job.max_concurrent is None:
            job.max_concurrent = 1
        if job.total_completions is None:
            job.total_completions = job.max_concurrent
    elif not mode.kinds or (mode.replicated is not None and mode.replicated.replicas is None):
        mode.replicated = ReplicatedService(replicas=1)


def _normalize_task(task: TaskSpec) -> None:
    if task.runtime in ("", RUNTIME_CONTAINER):
        if task.container_spec is None:
            raise InvalidArgument("mismatched Runtime and *Spec fields")
        task.runtime = RUNTIME_CONTAINER  # what inspect shows after the round trip
    elif task.runtime == "plugin":
        raise NotImplemented_(
            "rpc error: code = Unimplemented desc = "
            "RuntimeSpec: unimplemented runtime in service spec"
        )
    else:
        raise InvalidArgument("unsupported runtime")
    rp = task.restart_policy
    if rp is not None:
        if rp.condition == "":
            rp.condition = "any"
        elif rp.condition not in RESTART_CONDITIONS:
            raise InvalidArgument(f'invalid RestartCondition: "{rp.condition}"')
        if rp.max_attempts is None:
            rp.max_attempts = 0
    for mount in task.container_spec.mounts:
        if mount.type.lower() not in MOUNT_TYPES:
            raise InvalidArgument(f'invalid MountType: "{mount.type}"')
        mount.type = mount.type.lower()


def _normalize_update(config: UpdateConfig, kind: str) -> None:
    allowed = (
        FAILURE_ACTIONS
        if kind == "update"
        else tuple(a for a in FAILURE_ACTIONS if a != "rollback")
    )
    if config.failure_action == "":
        config.failure_action = "pause"
    elif config.failure_action not in allowed:
        raise InvalidArgument(f"unrecognized {kind} failure action {config.failure_action}")
    if config.order == "":
        config.order = "stop-first"
    elif config.order not in UPDATE_ORDERS:
        raise InvalidArgument(f"unrecognized {kind} order {config.order}")


def _validate_service(spec: ServiceSpec) -> None:
    if spec.name:
        if not _SERVICE_NAME.fullmatch(spec.name):
            raise _rpc("name must be valid as a DNS name component")
        if len(spec.name) > 63:
            raise _rpc("name must be 63 characters or fewer")
    task = spec.task_template
    _validate_resources(task.resources)
    _validate_restart(task.restart_policy)
    _validate_placement(task.placement)
    assert task.container_spec is not None  # _normalize_task made sure
    _validate_container(task.container_spec)
    for config in (spec.update_config, spec.rollback_config):
        if config is not None:
            _validate_update(config)
    _validate_endpoint(spec)
    mode = spec.mode
    if mode.replicated is not None and (mode.replicated.replicas or 0) < 0:
        raise _rpc("Number of replicas must be non-negative")
    job = mode.replicated_job
    if job is not None and min(job.max_concurrent or 0, job.total_completions or 0) < 0:
        raise _rpc("MaxConcurrent and TotalCompletions must be non-negative")


def _validate_resources(res: ResourceRequirements | None) -> None:
    if res is None:
        return
    for r in (res.limits, res.reservations):
        if r is None:
            continue
        if r.nano_cpus != 0 and r.nano_cpus < 1_000_000:
            raise _rpc(f"invalid cpu value {r.nano_cpus / 1e9:g}: Must be at least 0.001")
        if r.memory_bytes != 0 and r.memory_bytes < 4 * 1024 * 1024:
            raise _rpc(f"invalid memory value {r.memory_bytes}: Must be at least 4MiB")


def _validate_restart(rp: RestartPolicy | None) -> None:
    if rp is None:
        return
    if (rp.delay or 0) < 0:
        raise _rpc("TaskSpec: restart-delay cannot be negative")
    if (rp.window or 0) < 0:
        raise _rpc("TaskSpec: restart-window cannot be negative")
    if (rp.max_attempts or 0) < 0:
        raise _rpc("TaskSpec: restart-max-attempts cannot be negative")


def _validate_placement(placement: Placement | None) -> None:
    if placement is None:
        return
    parse_constraints(placement.constraints)
    if placement.max_replicas < 0:
        raise _rpc("TaskSpec: max-replicas cannot be negative")


def _validate_container(c: ContainerSpec) -> None:
    if c.image == "":
        raise _rpc("ContainerSpec: image reference must be provided")
    if len(c.image) > 255 or not _IMAGE.fullmatch(c.image):
        raise _rpc(f'ContainerSpec: "{c.image}" is not a valid repository/tag')
    targets: set[str] = set()
    for mount in c.mounts:
        if mount.target in targets:
            raise _rpc(f"ContainerSpec: duplicate mount point: {mount.target}")
        targets.add(mount.target)
    hc = c.healthcheck
    if hc is not None:
        for name, value in (
            ("Interval", hc.interval),
            ("Timeout", hc.timeout),
            ("StartPeriod", hc.start_period),
        ):
            if value != 0 and value < 1_000_000:
                raise _rpc(f"ContainerSpec: {name} in HealthConfig cannot be less than 1ms")
        if hc.retries < 0:
            raise _rpc("ContainerSpec: Retries in HealthConfig cannot be negative")
    _validate_refs(
        "secret", [(r.secret_id, r.secret_name, r.file, r.file is not None) for r in c.secrets]
    )
    _validate_refs(
        "config",
        [
            (r.config_id, r.config_name, r.file, r.file is not None or r.runtime is not None)
            for r in c.configs
        ],
    )


def _validate_refs(kind: str, refs: list[tuple[str, str, FileTarget | None, bool]]) -> None:
    seen: dict[str, str] = {}
    for ref_id, ref_name, file, has_target in refs:
        if not ref_id or not ref_name:
            raise _rpc(f"malformed {kind} reference")
        if not has_target:
            raise _rpc(f"malformed {kind} reference, no target provided")
        if file is None:
            continue  # a runtime target: no file to clash
        file_name = file.name
        if file_name == "":
            raise _rpc(f"malformed file {kind} reference, invalid target file name provided")
        if file_name in seen:
            raise _rpc(
                f"{kind} references '{seen[file_name]}' and '{ref_name}' have a conflicting "
                f"target: '{file_name}'"
            )
        seen[file_name] = ref_name


def _validate_update(config: UpdateConfig) -> None:
    if config.parallelism < 0:
        raise _rpc("TaskSpec: update-parallelism cannot be negative")
    if config.delay < 0:
        raise _rpc("TaskSpec: update-delay cannot be negative")
    if config.monitor < 0:
        raise _rpc("TaskSpec: update-monitor cannot be negative")
    if not 0 <= config.max_failure_ratio <= 1:
        raise _rpc("TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1")


def _validate_endpoint(spec: ServiceSpec) -> None:
    ep = spec.endpoint_spec
    if ep is None:
        return
    published: set[tuple[int, str]] = set()
    for port in ep.ports:
        for number in (port.target_port, port.published_port):
            if not 0 <= number <= 65535:
                raise _rpc(f"EndpointSpec: port {number} is out of range")
        if ep.mode == "dnsrr" and port.publish_mode == "ingress":
            raise _rpc(
                "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
            )
        if port.published_port == 0:
            continue  # auto-assigned later: cannot clash yet
        if (port.published_port, port.protocol) in published:
            raise _rpc("EndpointSpec: duplicate published ports provided")
        published.add((port.published_port, port.protocol))


def insert_defaults(spec: ServiceSpec) -> ServiceSpec:
    """The spec with swarm's defaults written in, for `GET /services/{id}?insertDefaults=true`."""
    spec = copy.deepcopy(spec)
    task = spec.task_template
    c = task.container_spec
    if c is not None:
        if c.stop_grace_period is None:
            c.stop_grace_period = DEFAULT_STOP_GRACE_NS
        if c.dns_config is None:
            c.dns_config = DNSConfig()
    if task.resources is None:
        task.resources = ResourceRequirements()
    if task.restart_policy is None:
        task.restart_policy = RestartPolicy(
            condition="any", delay=DEFAULT_RESTART_DELAY, max_attempts=0
        )
    elif task.restart_policy.delay is None:
        task.restart_policy.delay = DEFAULT_RESTART_DELAY
    if task.placement is None:
        task.placement = Placement()
    spec.update_config = _update_defaults(spec.update_config)
    spec.rollback_config = _update_defaults(spec.rollback_config)
    return spec


def _update_defaults(config: UpdateConfig | None) -> UpdateConfig:
    if config is None:
        return UpdateConfig(
            parallelism=1,
            failure_action="pause",
            monitor=DEFAULT_UPDATE_MONITOR,
            order="stop-first",
        )
    if config.monitor == 0:
        config.monitor = DEFAULT_UPDATE_MONITOR
    return config
