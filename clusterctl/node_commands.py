"""`clusterctl node ...`: list, inspect, the tasks on a node, and changes to a
node's role, availability and labels (GET the node, then POST its spec back
at the version read, as `docker node update` does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from clusterctl.common import (
    Target,
    api_path,
    complete_names,
    filter_dict,
    filter_option,
    filters_query,
    for_each,
    format_option,
    key_values,
    quiet_option,
    target_options,
)
from clusterctl.output import ago, human_bytes, print_fields, print_ids, print_json, print_table
from clusterctl.output import short_id as short

Node = dict[str, Any]


@click.group("node")
def node_group() -> None:
    """The cluster's nodes."""


def self_id(target: Target) -> str:
    """The node of the manager we talk to (docker's `self`)."""
    return str(target.get("info")["Swarm"].get("NodeID") or "")


def hostname(node: Node) -> str:
    return str((node.get("Description") or {}).get("Hostname") or "")


def manager_status(node: Node) -> str:
    status = node.get("ManagerStatus") or {}
    return "Leader" if status.get("Leader") else str(status.get("Reachability", "")).capitalize()


@node_group.command("ls")
@quiet_option
@filter_option
@format_option
@target_options
def node_ls_command(
    quiet: bool, filters: tuple[str, ...], output_format: str, target: Target
) -> None:
    """List the nodes; `*` marks the node of the manager you talk to.

    \b
    Example:
      clusterctl node ls
      clusterctl node ls --filter role=manager -q
    """
    nodes = target.get("nodes", filters=filters_query(filter_dict(filters)))
    nodes = sorted(nodes, key=lambda n: (hostname(n), n["ID"]))
    if output_format == "json":
        print_json(nodes)
        return
    if quiet:
        print_ids([n["ID"] for n in nodes])
        return
    me = self_id(target)
    rows = [
        [
            short(n["ID"]) + (" *" if n["ID"] == me else ""),
            hostname(n),
            n["Status"]["State"].capitalize(),
            n["Spec"]["Availability"].capitalize(),
            manager_status(n),
            ((n.get("Description") or {}).get("Engine") or {}).get("EngineVersion", ""),
        ]
        for n in nodes
    ]
    print_table(
        ["id", "hostname", "status", "availability", "manager status", "engine version"], rows
    )


def pretty_node(node: Node) -> list[tuple[int, str, object]]:
    """The lines of `docker node inspect --pretty`."""
    spec, status = node.get("Spec") or {}, node.get("Status") or {}
    description = node.get("Description") or {}
    lines: list[tuple[int, str, object]] = [(0, "ID", node["ID"])]
    if spec.get("Name"):
        lines.append((0, "Name", spec["Name"]))
    if spec.get("Labels"):
        lines.append((0, "Labels", None))
        lines += [(1, "-", f"{k}={v}") for k, v in sorted(spec["Labels"].items())]
    lines += [
        (0, "Hostname", hostname(node)),
        (0, "Joined at", node.get("CreatedAt", "")),
        (0, "Role", str(spec.get("Role", "")).capitalize()),
        (0, "Status", None),
        (1, "State", str(status.get("State", "")).capitalize()),
    ]
    if status.get("Message"):
        lines.append((1, "Message", status["Message"]))
    lines += [
        (1, "Availability", str(spec.get("Availability", "")).capitalize()),
        (1, "Address", status.get("Addr", "")),
    ]
    if node.get("ManagerStatus"):
        manager = node["ManagerStatus"]
        lines += [
            (0, "Manager Status", None),
            (1, "Address", manager.get("Addr", "")),
            (1, "Raft Status", str(manager.get("Reachability", "")).capitalize()),
            (1, "Leader", "Yes" if manager.get("Leader") else "No"),
        ]
    platform = description.get("Platform") or {}
    resources = description.get("Resources") or {}
    engine = description.get("Engine") or {}
    lines += [
        (0, "Platform", None),
        (1, "Operating System", platform.get("OS", "")),
        (1, "Architecture", platform.get("Architecture", "")),
        (0, "Resources", None),
        (1, "CPUs", int(resources.get("NanoCPUs") or 0) // 1_000_000_000),
        (1, "Memory", human_bytes(int(resources.get("MemoryBytes") or 0))),
    ]
    plugins: dict[str, list[str]] = {}
    for plugin in engine.get("Plugins") or []:
        plugins.setdefault(str(plugin.get("Type")), []).append(str(plugin.get("Name")))
    if plugins:
        lines.append((0, "Plugins", None))
        lines += [(1, kind, ", ".join(sorted(names))) for kind, names in sorted(plugins.items())]
    lines.append((0, "Engine Version", engine.get("EngineVersion", "")))
    if engine.get("Labels"):
        lines.append((0, "Engine Labels", None))
        lines += [(1, "-", f"{k}={v}") for k, v in sorted(engine["Labels"].items())]
    return lines


@node_group.command("inspect")
@click.option("--pretty", is_flag=True, help="Readable text instead of JSON.")
@click.option("--format", "output_format", type=click.Choice(["json"]), default="json")
@click.argument("nodes", nargs=-1, required=True, shell_complete=complete_names("nodes"))
@target_options
def node_inspect_command(
    pretty: bool, output_format: str, nodes: tuple[str, ...], target: Target
) -> None:
    """Show nodes in detail (a JSON list; `self` is this manager's node).

    \b
    Example:
      clusterctl node inspect self
      clusterctl node inspect --pretty worker-1
    """
    found: list[Node] = []

    def show() -> None:
        if not pretty:
            print_json(found)
        for index, node in enumerate(found if pretty else []):
            if index:
                click.echo()
            print_fields(pretty_node(node))

    for_each(nodes, lambda ref: found.append(target.get("nodes", resolve_self(target, ref))), show)


def resolve_self(target: Target, ref: str) -> str:
    if ref != "self":
        return ref
    me = self_id(target)
    if not me:
        raise click.ClickException("the manager is not part of a cluster, so it has no node")
    return me


def task_rows(
    tasks: list[Node], services: dict[str, str], nodes: dict[str, str], full: bool
) -> list[list[str]]:
    """`docker node ps` rows: by service and slot, the newest task of a slot first."""
    newest_first = sorted(
        tasks, key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")), reverse=True
    )
    rows = []
    for task in sorted(newest_first, key=slot_order(services)):
        status = task.get("Status") or {}
        slot = task.get("Slot") or task.get("NodeID", "")
        name = f"{services.get(task.get('ServiceID', ''), task.get('ServiceID', ''))}.{slot}"
        image = str(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", ""))
        state = str(status.get("State", "")).capitalize()
        error = str(status.get("Err") or "")
        rows.append(
            [
                short(task["ID"], full),
                name,
                image if full else image.split("@", 1)[0],
                nodes.get(str(task.get("NodeID", "")), str(task.get("NodeID", ""))),
                str(task.get("DesiredState", "")).capitalize(),
                f"{state} {ago(status.get('Timestamp'))}".strip(),
                error if full or len(error) <= 30 else error[:29] + "…",
            ]
        )
    return rows


def slot_order(services: dict[str, str]) -> Callable[[Node], tuple[str, str]]:
    def key(task: Node) -> tuple[str, str]:
        name = services.get(task.get("ServiceID", ""), "")
        return name, str(task.get("Slot") or task.get("NodeID", "")).zfill(25)

    return key


@node_group.command("ps")
@click.argument("nodes", nargs=-1, shell_complete=complete_names("nodes"))
@quiet_option
@click.option("--no-trunc", is_flag=True, help="Show whole IDs, images and errors.")
@filter_option
@format_option
@target_options
def node_ps_command(
    nodes: tuple[str, ...],
    quiet: bool,
    no_trunc: bool,
    filters: tuple[str, ...],
    output_format: str,
    target: Target,
) -> None:
    """List the tasks on nodes (default: `self`, the node of this manager).

    \b
    Example:
      clusterctl node ps
      clusterctl node ps worker-1 --filter desired-state=running
    """
    ids = [target.get("nodes", resolve_self(target, ref))["ID"] for ref in nodes or ("self",)]
    wanted = filter_dict(filters)
    wanted["node"] = ids
    tasks = target.get("tasks", filters=filters_query(wanted))
    if output_format == "json":
        print_json(tasks)
        return
    if quiet:
        print_ids([t["ID"] for t in tasks])
        return
    services = {s["ID"]: s["Spec"]["Name"] for s in target.get("services")}
    names = {n["ID"]: hostname(n) for n in target.get("nodes")}
    headers = ["id", "name", "image", "node", "desired state", "current state", "error"]
    print_table(headers, task_rows(tasks, services, names, no_trunc))


def change_node(target: Target, ref: str, edit: Callable[[dict[str, Any]], None]) -> Node:
    """GET the node, edit its spec, POST it back at the version read."""
    node: Node = target.get("nodes", resolve_self(target, ref))
    spec = dict(node.get("Spec") or {})
    spec["Labels"] = dict(spec.get("Labels") or {})
    edit(spec)
    path = api_path("nodes", node["ID"], "update", version=node["Version"]["Index"])
    target.call("POST", path, spec)
    return node


@node_group.command("update")
@click.option(
    "--availability",
    type=click.Choice(["active", "pause", "drain"]),
    default=None,
    help="Whether the scheduler may place tasks on the node.",
)
@click.option("--role", type=click.Choice(["worker", "manager"]), default=None)
@click.option("--label-add", multiple=True, metavar="KEY[=VALUE]", help="Add or set a label.")
@click.option("--label-rm", multiple=True, metavar="KEY", help="Remove a label.")
@click.argument("node", shell_complete=complete_names("nodes"))
@target_options
def node_update_command(
    availability: str | None,
    role: str | None,
    label_add: tuple[str, ...],
    label_rm: tuple[str, ...],
    node: str,
    target: Target,
) -> None:
    """Change a node's availability, role or labels.

    \b
    Example:
      clusterctl node update --availability drain worker-1
      clusterctl node update --label-add zone=a --label-rm old worker-1
    """
    added = key_values(label_add, "--label-add", value_required=False)

    def edit(spec: dict[str, Any]) -> None:
        if availability:
            spec["Availability"] = availability
        if role:
            spec["Role"] = role
        for key in label_rm:
            if key not in spec["Labels"]:
                raise click.BadParameter(
                    f"key {key} doesn't exist in node's labels", param_hint="--label-rm"
                )
            del spec["Labels"][key]
        spec["Labels"].update(added)

    change_node(target, node, edit)
    click.echo(node)


def set_role(target: Target, refs: tuple[str, ...], role: str) -> None:
    def one(ref: str) -> None:
        node = target.get("nodes", resolve_self(target, ref))
        if (node.get("Spec") or {}).get("Role") == role:
            click.echo(f"Node {ref} is already a {role}.")
            return
        change_node(target, node["ID"], lambda spec: spec.update(Role=role))
        if role == "manager":
            click.echo(f"Node {ref} promoted to a manager in the swarm.")
        else:
            click.echo(f"Manager {ref} demoted in the swarm.")

    for_each(refs, one)


@node_group.command("promote")
@click.argument("nodes", nargs=-1, required=True, shell_complete=complete_names("nodes"))
@target_options
def node_promote_command(nodes: tuple[str, ...], target: Target) -> None:
    """Make nodes managers (their manager process joins Raft with the manager token).

    \b
    Example:
      clusterctl node promote worker-1
    """
    set_role(target, nodes, "manager")


@node_group.command("demote")
@click.argument("nodes", nargs=-1, required=True, shell_complete=complete_names("nodes"))
@target_options
def node_demote_command(nodes: tuple[str, ...], target: Target) -> None:
    """Make managers workers (they leave Raft; the last manager cannot).

    \b
    Example:
      clusterctl node demote manager-3
    """
    set_role(target, nodes, "worker")


@node_group.command("rm")
@click.option("--force", "-f", is_flag=True, help="Remove a node even if it is not down.")
@click.argument("nodes", nargs=-1, required=True, shell_complete=complete_names("nodes"))
@target_options
def node_rm_command(force: bool, nodes: tuple[str, ...], target: Target) -> None:
    """Remove nodes from the cluster (a node must be down, or --force).

    \b
    Example:
      clusterctl node rm --force worker-2
    """

    def one(ref: str) -> None:
        target.call("DELETE", api_path("nodes", ref, force="1" if force else None))
        click.echo(ref)

    for_each(nodes, one)
