"""`service create/update` flags → a ServiceSpec in Docker's JSON (docker-api.md §3).

Pure. `flags` maps a click parameter name to its value and holds only the
options the user gave, so `update` changes exactly those; values are the strings
typed (service_values parses them). Names of secrets and configs arrive already
resolved to IDs in a `Lookup`.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from clusterctl.service_lists import CONTAINER, LISTS, PLACEMENT, Lookup, at
from clusterctl.service_values import (
    Spec,
    bad,
    capability,
    parse_bytes,
    parse_cpus,
    parse_duration,
    parse_file_ref,
    parse_int,
    with_tag,
)

Flags = Mapping[str, Any]
Parser = Callable[[str, str], Any]
NS = 1_000_000_000


def _text(value: str, flag: str) -> str:
    return value


def _ratio(value: str, flag: str) -> float:
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    if not 0 <= ratio <= 1:
        raise bad(flag, f"{value!r} is not a ratio between 0 and 1")
    return ratio


def _count(value: str, flag: str) -> int:
    return parse_int(value, flag)


_HEALTH = (*CONTAINER, "Healthcheck")
_LIMITS = ("TaskTemplate", "Resources", "Limits")
_RESERVED = ("TaskTemplate", "Resources", "Reservations")
_RESTART = ("TaskTemplate", "RestartPolicy")

# flag → (where in the spec, the field, how to read the value)
SCALARS: dict[str, tuple[tuple[str, ...], str, Parser]] = {
    "image": (CONTAINER, "Image", lambda v, f: with_tag(v)),
    "user": (CONTAINER, "User", _text),
    "workdir": (CONTAINER, "Dir", _text),
    "hostname": (CONTAINER, "Hostname", _text),
    "stop_signal": (CONTAINER, "StopSignal", _text),
    "stop_grace_period": (CONTAINER, "StopGracePeriod", parse_duration),
    "health_interval": (_HEALTH, "Interval", parse_duration),
    "health_timeout": (_HEALTH, "Timeout", parse_duration),
    "health_start_period": (_HEALTH, "StartPeriod", parse_duration),
    "health_retries": (_HEALTH, "Retries", _count),
    "replicas_max_per_node": (PLACEMENT, "MaxReplicas", _count),
    "limit_cpu": (_LIMITS, "NanoCPUs", parse_cpus),
    "limit_memory": (_LIMITS, "MemoryBytes", parse_bytes),
    "limit_pids": (_LIMITS, "Pids", _count),
    "reserve_cpu": (_RESERVED, "NanoCPUs", parse_cpus),
    "reserve_memory": (_RESERVED, "MemoryBytes", parse_bytes),
    "restart_condition": (_RESTART, "Condition", _text),
    "restart_delay": (_RESTART, "Delay", parse_duration),
    "restart_max_attempts": (_RESTART, "MaxAttempts", _count),
    "restart_window": (_RESTART, "Window", parse_duration),
    "endpoint_mode": (("EndpointSpec",), "Mode", _text),
}
for _kind, _key in (("update", "UpdateConfig"), ("rollback", "RollbackConfig")):
    SCALARS |= {
        f"{_kind}_parallelism": ((_key,), "Parallelism", _count),
        f"{_kind}_delay": ((_key,), "Delay", parse_duration),
        f"{_kind}_failure_action": ((_key,), "FailureAction", _text),
        f"{_kind}_monitor": ((_key,), "Monitor", parse_duration),
        f"{_kind}_max_failure_ratio": ((_key,), "MaxFailureRatio", _ratio),
        f"{_kind}_order": ((_key,), "Order", _text),
    }

# What the docker CLI starts from when the first flag of the group is given.
GROUP_DEFAULTS: dict[tuple[str, ...], Spec] = {
    ("UpdateConfig",): {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5 * NS,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    },
    ("RollbackConfig",): {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5 * NS,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    },
    _RESTART: {"Condition": "any", "Delay": 5 * NS, "MaxAttempts": 0},
}


def referenced_names(flags: Flags, kind: str) -> list[str]:
    """The secret (or config) names the flags use, to look their IDs up."""
    texts = [*flags.get(kind, ()), *flags.get(f"{kind}_add", ())]
    return sorted({parse_file_ref(t, kind)["Name"] for t in texts})


def base_spec(image: str, args: Iterable[str], name: str | None) -> Spec:
    """What the docker CLI sends for `service create IMAGE [ARG...]` alone."""
    container: Spec = {"Image": with_tag(image), "Init": False, "DNSConfig": {}}
    if args:
        container["Args"] = list(args)
    spec: Spec = {"Name": name} if name else {}
    return spec | {
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": {}, "Reservations": {}},
            "Placement": {},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "vip"},
    }


def mode_spec(mode: str, replicas: int | None) -> Spec:
    if mode == "replicated":
        return {"Replicated": {"Replicas": 1 if replicas is None else replicas}}
    if mode == "replicated-job":
        total = 1 if replicas is None else replicas
        return {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": total}}
    if replicas is not None:
        raise click.UsageError(f"--replicas does not apply to --mode {mode}")
    return {"Global": {}} if mode == "global" else {"GlobalJob": {}}


# create's list flags are update's --*-add flags applied to an empty spec.
CREATE_LISTS: tuple[str, ...] = (
    "label",
    "publish",
    "network",
    "constraint",
    "placement_pref",
    "mount",
    "secret",
)
CREATE_LISTS += ("config", "sysctl")


def create_spec(
    image: str, args: Iterable[str], flags: Flags, lookup: Lookup, env_files: Iterable[str] = ()
) -> Spec:
    """The ServiceSpec of `service create [flags] IMAGE [ARG...]`; env_files are
    the lines read from --env-file (parse_env_file), before --env."""
    spec = base_spec(image, args, flags.get("name"))
    spec["Mode"] = mode_spec(flags.get("mode") or "replicated", _replicas(flags))
    changes = {f"{kind}_add": flags[kind] for kind in CREATE_LISTS if flags.get(kind)}
    env = [*env_files, *flags.get("env", ())]
    if env:
        changes["env_add"] = env
    scalars = {k: v for k, v in flags.items() if k not in ("replicas", "mode", "name")}
    return apply(spec, {**scalars, **changes}, lookup)


def update_spec(current: Spec, flags: Flags, lookup: Lookup) -> Spec:
    """The new spec of `service update [flags] SERVICE`, from the current one."""
    spec = copy.deepcopy(current)
    replicas = _replicas(flags)
    if replicas is not None:
        set_replicas(spec, replicas)
    if flags.get("force"):
        template = at(spec, ["TaskTemplate"])
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
    if flags.get("args") is not None:
        at(spec, CONTAINER)["Args"] = shlex.split(flags["args"])
    return apply(spec, {k: v for k, v in flags.items() if k != "replicas"}, lookup)


def _replicas(flags: Flags) -> int | None:
    text = flags.get("replicas")
    return None if text is None else parse_int(str(text), "replicas")


def set_replicas(spec: Spec, replicas: int) -> None:
    mode = spec.get("Mode") or {}
    if "Replicated" in mode:
        mode["Replicated"]["Replicas"] = replicas
    elif "ReplicatedJob" in mode:
        mode["ReplicatedJob"]["TotalCompletions"] = replicas
    else:
        raise click.UsageError("replicas can only be set on a replicated service or job")


def apply(spec: Spec, flags: Flags, lookup: Lookup) -> Spec:
    for name, value in flags.items():
        if name in SCALARS and value is not None:
            keys, key, parse = SCALARS[name]
            if keys in GROUP_DEFAULTS and not spec.get(keys[-1]):
                # the parent of this group (not the group itself) must exist
                at(spec, keys[:-1])[keys[-1]] = dict(GROUP_DEFAULTS[keys])
            at(spec, keys)[key] = parse(str(value), name.replace("_", "-"))
    _apply_flags(spec, flags)
    _apply_health(spec, flags)
    for kind, (add, remove) in LISTS.items():
        for text in flags.get(f"{kind}_rm", ()):
            remove(spec, text, lookup)
        for text in flags.get(f"{kind}_add", ()):
            add(spec, text, lookup)
    return spec


def _apply_flags(spec: Spec, flags: Flags) -> None:
    container = at(spec, CONTAINER)
    for name, key in (("read_only", "ReadOnly"), ("init", "Init")):
        if flags.get(name) is not None:
            container[key] = bool(flags[name])
    for name, key, other in (
        ("cap_add", "CapabilityAdd", "CapabilityDrop"),
        ("cap_drop", "CapabilityDrop", "CapabilityAdd"),
    ):
        for cap in map(capability, flags.get(name, ())):
            if cap not in container.setdefault(key, []):
                container[key].append(cap)
            if cap in (container.get(other) or []):
                container[other].remove(cap)


def _apply_health(spec: Spec, flags: Flags) -> None:
    health_flags = [f for f in flags if f.startswith("health_") and flags[f] is not None]
    if flags.get("no_healthcheck"):
        if health_flags:
            raise click.UsageError("--no-healthcheck conflicts with --health-* options")
        at(spec, _HEALTH).clear()
        at(spec, _HEALTH)["Test"] = ["NONE"]
    elif flags.get("health_cmd") is not None:
        at(spec, _HEALTH)["Test"] = ["CMD-SHELL", flags["health_cmd"]]
