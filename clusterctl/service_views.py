"""`service ls`, `ps` and `inspect`: the cluster's services as docker shows them."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from api.base import parse_time
from clusterctl.common import (
    Target,
    filter_dict,
    filter_option,
    filters_query,
    format_option,
    inspect_format_option,
    quiet_option,
    target_options,
)
from clusterctl.output import ago, print_fields, print_ids, print_json, print_table

Obj = dict[str, Any]


def get_service(target: Target, ref: str) -> Obj:
    """By ID, name or unique ID prefix (the manager resolves it)."""
    found: Obj = target.get("services", ref, insertDefaults="false")
    return found


# --- formatting (pure) ---------------------------------------------------------


def go_duration(ns: int | None) -> str:
    """Nanoseconds as Go prints a duration: 1m30s, 500ms, 0s."""
    if not ns:
        return "0s"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:g}ms" if ns >= 1_000_000 else f"{ns}ns"
    hours, rest = divmod(ns / 1e9, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{int(hours)}h" if hours else ""
    text += f"{int(minutes)}m" if hours or minutes else ""
    return text + f"{seconds:g}s"


def mode_name(spec: Obj) -> str:
    mode = spec.get("Mode") or {}
    names = {"Global": "global", "ReplicatedJob": "replicated job", "GlobalJob": "global job"}
    return next((name for key, name in names.items() if key in mode), "replicated")


def replicas_column(service: Obj) -> str:
    spec, status = service["Spec"], service.get("ServiceStatus") or {}
    running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
    mode = spec.get("Mode") or {}
    if "ReplicatedJob" in mode or "GlobalJob" in mode:
        total = (mode.get("ReplicatedJob") or {}).get("TotalCompletions") or desired
        done = status.get("CompletedTasks", 0)
        return f"{running}/{desired} ({done}/{total} completed)"
    shown = f"{running}/{desired}"
    max_per_node = ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("MaxReplicas")
    return f"{shown} (max {max_per_node} per node)" if max_per_node else shown


def image_column(image: str) -> str:
    return image.split("@", 1)[0]


def ports_column(ports: list[Obj] | None) -> str:
    return ", ".join(
        f"*:{p.get('PublishedPort', 0)}->{p.get('TargetPort', 0)}/{p.get('Protocol') or 'tcp'}"
        for p in ports or []
    )


def service_row(service: Obj) -> list[str]:
    spec = service["Spec"]
    image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
    return [
        service["ID"][:12],
        spec.get("Name", ""),
        mode_name(spec),
        replicas_column(service),
        image_column(image),
        ports_column((service.get("Endpoint") or {}).get("Ports")),
    ]


def task_rows(
    tasks: list[Obj], names: dict[str, str], hosts: dict[str, str], now: float
) -> list[list[str]]:
    """docker's `service ps` table: per slot (or node) the newest task first,
    older ones under it as ` \\_ name`."""

    def when(task: Obj) -> int:
        status = task.get("Status") or {}
        return parse_time(
            status.get("Timestamp") or task.get("CreatedAt") or "1970-01-01T00:00:00Z"
        )

    def group(task: Obj) -> tuple[str, int, str]:
        return (
            names.get(task["ServiceID"], ""),
            int(task.get("Slot") or 0),
            task.get("NodeID") or "",
        )

    rows, seen = [], set()
    for task in sorted(tasks, key=lambda t: (group(t), -when(t))):
        name = names.get(task["ServiceID"], task["ServiceID"][:12])
        name += f".{task['Slot']}" if task.get("Slot") else f".{task.get('NodeID', '')}"
        shown = f" \\_ {name}" if group(task) in seen else name
        seen.add(group(task))
        status = task.get("Status") or {}
        container = (task.get("Spec") or {}).get("ContainerSpec") or {}
        rows.append(
            [
                task["ID"][:12],
                shown,
                image_column(container.get("Image", "")),
                hosts.get(task.get("NodeID") or "", task.get("NodeID") or ""),
                str(task.get("DesiredState", "")).capitalize(),
                f"{str(status.get('State', '')).capitalize()} {ago(status.get('Timestamp'), now)}",
                json.dumps(status["Err"]) if status.get("Err") else "",
                ports_column((status.get("PortStatus") or {}).get("Ports")),
            ]
        )
    return rows


Field = tuple[int, str, object]


def describe(service: Obj) -> list[Field]:
    """`inspect --pretty`: the spec in words, as output.print_fields shows them."""
    spec = service["Spec"]
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    fields: list[Field] = [(0, "ID", service["ID"]), (0, "Name", spec.get("Name", ""))]
    fields += _items(0, "Labels", [f"{k}={v}" for k, v in sorted(spec.get("Labels", {}).items())])
    fields.append((0, "Service Mode", mode_name(spec).title()))
    replicated = (spec.get("Mode") or {}).get("Replicated")
    if replicated:
        fields.append((1, "Replicas", replicated.get("Replicas")))
    status = service.get("UpdateStatus")
    if status:
        fields += [(0, "UpdateStatus", None), (1, "State", status.get("State"))]
        fields.append((1, "Message", status.get("Message", "")))
    placement = template.get("Placement") or {}
    fields += _items(0, "Placement constraints", placement.get("Constraints"))
    for key in ("UpdateConfig", "RollbackConfig"):
        config = spec.get(key)
        if config:
            fields += [
                (0, key, None),
                (1, "Parallelism", config.get("Parallelism", 0)),
                (1, "Delay", go_duration(config.get("Delay"))),
                (1, "On failure", config.get("FailureAction", "")),
                (1, "Monitoring Period", go_duration(config.get("Monitor"))),
                (1, "Max failure ratio", config.get("MaxFailureRatio", 0)),
                (1, "Update order", config.get("Order", "")),
            ]
    fields += [(0, "ContainerSpec", None), (1, "Image", container.get("Image", ""))]
    if container.get("Args"):
        fields.append((1, "Args", " ".join(container["Args"])))
    fields += _items(1, "Env", container.get("Env"))
    mounts = container.get("Mounts") or []
    fields += _items(
        1, "Mounts", [f"{m.get('Source', '')}:{m['Target']} ({m['Type']})" for m in mounts]
    )
    for kind in ("Secret", "Config"):
        refs = container.get(f"{kind}s") or []
        names = [f"{r.get(f'{kind}Name')} -> {(r.get('File') or {}).get('Name', '')}" for r in refs]
        fields += _items(1, f"{kind}s", names)
    resources = template.get("Resources") or {}
    for key in ("Limits", "Reservations"):
        values = resources.get(key) or {}
        fields += _items(0, f"Resources {key}", [f"{k}={v}" for k, v in values.items()])
    fields += _items(0, "Networks", [n.get("Target", "") for n in template.get("Networks") or []])
    endpoint = spec.get("EndpointSpec") or {}
    fields.append((0, "Endpoint Mode", endpoint.get("Mode", "vip")))
    ports = (service.get("Endpoint") or {}).get("Ports") or endpoint.get("Ports")
    fields += _items(0, "Ports", ports_column(ports).split(", ") if ports else [])
    return fields


def _items(level: int, title: str, items: list[str] | None) -> list[Field]:
    return [(level, title, None), *((level + 1, "-", item) for item in items)] if items else []


# --- commands ---------------------------------------------------------------------


@click.command("ls")
@quiet_option
@filter_option
@format_option
@target_options
def ls_command(quiet: bool, filters: tuple[str, ...], output_format: str, target: Target) -> None:
    """List services, with their running and desired tasks.

    \b
    Example:
      clusterctl service ls
      clusterctl service ls --filter mode=global --format json
    """
    wanted = filter_dict(filters)
    services = target.get("services", status="true", filters=filters_query(wanted))
    if quiet:
        print_ids([s["ID"] for s in services])
    elif output_format == "json":
        print_json(services)
    else:
        rows = [service_row(s) for s in sorted(services, key=lambda s: s["Spec"].get("Name", ""))]
        print_table(["id", "name", "mode", "replicas", "image", "ports"], rows)


@click.command("ps")
@quiet_option
@filter_option
@format_option
@target_options
@click.argument("services", nargs=-1, required=True)
def ps_command(
    quiet: bool,
    filters: tuple[str, ...],
    output_format: str,
    target: Target,
    services: tuple[str, ...],
) -> None:
    """List the tasks of services: per slot the newest first, then its history.

    \b
    Example:
      clusterctl service ps web
      clusterctl service ps --filter desired-state=running web api
    """
    wanted = filter_dict(filters)
    found = [get_service(target, ref) for ref in services]
    wanted["service"] = [s["ID"] for s in found]
    tasks = target.get("tasks", filters=filters_query(wanted))
    if quiet:
        print_ids([t["ID"] for t in tasks])
        return
    if output_format == "json":
        print_json(tasks)
        return
    names = {s["ID"]: s["Spec"].get("Name", "") for s in found}
    hosts = {n["ID"]: n["Description"].get("Hostname", n["ID"]) for n in target.get("nodes")}
    headers = ["id", "name", "image", "node", "desired state", "current state", "error", "ports"]
    print_table(headers, task_rows(tasks, names, hosts, time.time()))


@click.command("inspect")
@click.option("--pretty", is_flag=True, help="A readable summary instead of JSON.")
@inspect_format_option
@target_options
@click.argument("services", nargs=-1, required=True)
def inspect_command(
    pretty: bool, output_format: str, target: Target, services: tuple[str, ...]
) -> None:
    """Show services in detail (a JSON list, as docker service inspect).

    \b
    Example:
      clusterctl service inspect web
      clusterctl service inspect --pretty web
    """
    found = [get_service(target, ref) for ref in services]
    if not pretty:
        print_json(found)
        return
    for number, service in enumerate(found):
        if number:
            click.echo()
        print_fields(describe(service))
