"""`clusterctl service ...`: create, update, scale, roll back and remove
services, waiting for them to converge as the docker CLI does; and their logs.
(`ls`, `ps` and `inspect` are in service_views.)"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from api.client import ManagerClient
from api.log_stream import FrameDecoder, split_details
from clusterctl.common import Target, api_path, for_each, target_options
from clusterctl.progress import SilentDisplay, Watch, display_for_stdout
from clusterctl.service_flags import create_spec, referenced_names, update_spec
from clusterctl.service_lists import Lookup
from clusterctl.service_options import (
    CREATE_LIST_OPTIONS,
    SHARED_OPTIONS,
    UPDATE_OPTIONS,
    given,
    options,
)
from clusterctl.service_values import parse_duration, parse_env_file
from clusterctl.service_views import get_service, inspect_command, ls_command, ps_command

F = TypeVar("F", bound=Callable[..., Any])
Obj = dict[str, Any]


@click.group("service")
def service_group() -> None:
    """The cluster's services."""


for _command in (ls_command, ps_command, inspect_command):
    service_group.add_command(_command)


def lookup_names(target: Target, flags: dict[str, Any]) -> Lookup:
    """IDs of the secrets and configs the flags name, found as the docker CLI
    does (list filtered by name), and of the networks removed or added."""
    lookup = Lookup()
    for kind, ids in (("secret", lookup.secrets), ("config", lookup.configs)):
        names = referenced_names(flags, kind)
        if names:
            found = target.get(f"{kind}s", filters=json.dumps({"name": names}))
            ids.update({o["Spec"]["Name"]: o["ID"] for o in found if o["Spec"]["Name"] in names})
    for name in (*flags.get("network_add", ()), *flags.get("network_rm", ())):
        lookup.networks[name] = target.get("networks", name)["Id"]
    return lookup


def converge(
    target: Target, service_id: str, name: str, flags: dict[str, Any], rollback: bool = False
) -> None:
    """Unless --detach, the live progress until the service converges
    (docker-api.md §4); --quiet waits without showing it."""
    if flags.get("detach"):
        return
    up_to_date = json.dumps({"service": {service_id: True}, "_up-to-date": {"true": True}})

    def fetch() -> tuple[Obj, list[Obj], list[Obj]]:
        service = get_service(target, service_id)
        return service, target.get("tasks", filters=up_to_date), target.get("nodes")

    display = SilentDisplay() if flags.get("quiet") else display_for_stdout()
    try:
        Watch(fetch, display, rollback=rollback).run()
    except KeyboardInterrupt:
        click.echo("\nOperation continuing in background.", err=True)
        click.echo(f"Use `clusterctl service ps {name}` to check progress.", err=True)
        sys.exit(130)


def _warn(reply: Any) -> None:
    for warning in (reply or {}).get("Warnings") or []:
        click.echo(f"warning: {warning}", err=True)


# As docker's: options end at IMAGE, so the command's own flags (sh -c ...) stay its own.
@service_group.command("create", context_settings={"allow_interspersed_args": False})
@click.option("--name", default=None, help="Service name (default: one is made up).")
@click.option(
    "--mode",
    type=click.Choice(["replicated", "global", "replicated-job", "global-job"]),
    default="replicated",
    show_default=True,
    help="Tasks per replica, per node, or run to completion (jobs).",
)
@options(*CREATE_LIST_OPTIONS)
@options(*SHARED_OPTIONS)
@target_options
@click.argument("image")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create_command(
    context: click.Context, /, target: Target, image: str, args: tuple[str, ...], **_: Any
) -> None:
    """Create a service running IMAGE (with COMMAND and ARGs), and wait until
    its tasks run. Put `--` before a command that has options of its own.

    \b
    Example:
      clusterctl service create --name web --replicas 3 -p 8080:80 nginx
      clusterctl service create --name job --mode replicated-job busybox echo hi
      clusterctl service create --name ls -d busybox -- ls -l /
    """
    flags = given(context)
    env_lines = [
        line
        for file in flags.get("env_file", ())
        for line in parse_env_file(Path(file).read_text(), os.environ)
    ]
    spec = create_spec(image, args, flags, lookup_names(target, flags), env_lines)
    reply = target.call("POST", "/services/create", spec)
    _warn(reply)
    click.echo(reply["ID"])
    converge(target, reply["ID"], spec.get("Name") or reply["ID"], flags)


@service_group.command("update")
@options(*UPDATE_OPTIONS)
@options(*SHARED_OPTIONS)
@target_options
@click.argument("service")
@click.pass_context
def update_command(context: click.Context, /, target: Target, service: str, **_: Any) -> None:
    """Change a service: only the options given change. Its tasks are replaced
    as its update config says, and the command waits until they run.

    \b
    Example:
      clusterctl service update --image nginx:1.27 --update-parallelism 2 web
      clusterctl service update --env-add MODE=fast --publish-rm 80 web
      clusterctl service update --force web
    """
    flags = given(context)
    current = get_service(target, service)
    spec = update_spec(current["Spec"], flags, lookup_names(target, flags))
    _post_update(target, current, spec)
    click.echo(service)
    converge(target, current["ID"], service, flags)


def _post_update(target: Target, current: Obj, spec: Obj, rollback: bool = False) -> None:
    path = api_path(
        "services",
        current["ID"],
        "update",
        version=current["Version"]["Index"],
        rollback="previous" if rollback else None,
    )
    _warn(target.call("POST", path, spec))


@service_group.command("scale")
@click.option("--detach", "-d", is_flag=True, help="Return at once, without waiting to converge.")
@target_options
@click.argument("scales", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
def scale_command(detach: bool, target: Target, scales: tuple[str, ...]) -> None:
    """Set the number of tasks of replicated services (or jobs).

    \b
    Example:
      clusterctl service scale web=5 api=2
    """
    wanted = []
    for text in scales:
        name, sep, count = text.partition("=")
        if not name or not sep or not count.isdigit():
            raise click.BadParameter(
                f"{text!r}: want SERVICE=REPLICAS, e.g. web=3", param_hint="SERVICE=REPLICAS"
            )
        wanted.append((name, int(count)))

    def scale(text: str) -> None:
        name, _, count = text.partition("=")
        current = get_service(target, name)
        spec = update_spec(current["Spec"], {"replicas": int(count)}, Lookup())
        _post_update(target, current, spec)
        click.echo(f"{name} scaled to {count}")
        converge(target, current["ID"], name, {"detach": detach})

    for_each([f"{n}={c}" for n, c in wanted], scale)


@service_group.command("rollback")
@click.option("--detach", "-d", is_flag=True, help="Return at once, without waiting to converge.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@target_options
@click.argument("service")
def rollback_command(detach: bool, quiet: bool, target: Target, service: str) -> None:
    """Go back to the service's previous spec.

    \b
    Example:
      clusterctl service rollback web
    """
    current = get_service(target, service)
    _post_update(target, current, current["Spec"], rollback=True)
    click.echo(service)
    converge(target, current["ID"], service, {"detach": detach, "quiet": quiet}, rollback=True)


@service_group.command("rm")
@target_options
@click.argument("services", nargs=-1, required=True)
def rm_command(target: Target, services: tuple[str, ...]) -> None:
    """Remove services (their tasks stop).

    \b
    Example:
      clusterctl service rm web api
    """

    def remove(ref: str) -> None:
        target.call("DELETE", api_path("services", ref))
        click.echo(ref)

    for_each(services, remove)


class TaskNames:
    """`web.2.k3x9…@host-2`, as `docker service logs` names a line's task."""

    def __init__(self, client: ManagerClient, full: bool) -> None:
        self.client = client
        self.full = full
        self.names: dict[str, str] = {}
        self.hosts: dict[str, str] = {}

    async def name(self, attrs: dict[str, str]) -> str:
        task_id = attrs.get("com.docker.swarm.task.id", "")
        if task_id not in self.names:
            task = await self.client.request("GET", f"/tasks/{task_id}")
            service = await self.client.request("GET", f"/services/{task['ServiceID']}")
            slot = task.get("Slot") or task.get("NodeID")
            shown_id = task_id if self.full else task_id[:12]
            self.names[task_id] = f"{service['Spec']['Name']}.{slot}.{shown_id}"
        return (
            f"{self.names[task_id]}@{await self._host(attrs.get('com.docker.swarm.node.id', ''))}"
        )

    async def _host(self, node_id: str) -> str:
        if node_id not in self.hosts:
            node = await self.client.request("GET", f"/nodes/{node_id}")
            self.hosts[node_id] = str(node["Description"].get("Hostname") or node_id)
        return self.hosts[node_id]


def since_param(text: str) -> str:
    """A duration ago (10m, 1h30m) as unix seconds, or a timestamp as given."""
    try:
        return f"{time.time() - parse_duration(text, 'since') / 1e9:.9f}"
    except click.BadParameter:
        return text


async def print_logs(
    client: ManagerClient, service: str, params: dict[str, str], full: bool
) -> None:
    found = await client.request("GET", f"/services/{service}")  # a clear 404 first
    names = TaskNames(client, full)
    decoder = FrameDecoder()
    width = 0
    async for chunk in client.stream(f"/services/{found['ID']}/logs", params):
        for frame in decoder.feed(chunk):
            line = frame.payload.decode(errors="replace")
            stamp = ""
            if params.get("timestamps") == "1":
                stamp, _, line = line.partition(" ")
                stamp += " "
            attrs, text = split_details(line)
            prefix = await names.name(attrs) if attrs else ""
            width = max(width, len(prefix))
            out = sys.stdout if frame.stream == "stdout" else sys.stderr
            out.write(f"{stamp}{prefix:<{width}} | {text}" if prefix else stamp + text)
            if not text.endswith("\n"):
                out.write("\n")
            out.flush()


@service_group.command("logs")
@click.option("--follow", "-f", is_flag=True, help="Keep following new output.")
@click.option("--tail", default="all", show_default=True, help="Lines from the end of each task.")
@click.option("--since", default=None, help="Only newer lines: a duration (10m) or a timestamp.")
@click.option("--timestamps", "-t", is_flag=True, help="Show each line's time.")
@click.option("--no-trunc", is_flag=True, help="Show whole task IDs.")
@target_options
@click.argument("service")
def logs_command(
    follow: bool,
    tail: str,
    since: str | None,
    timestamps: bool,
    no_trunc: bool,
    target: Target,
    service: str,
) -> None:
    """Show the output of a service's tasks, from every node they ran on.

    \b
    Example:
      clusterctl service logs --follow --tail 20 web
    """
    if tail != "all" and not tail.isdigit():
        raise click.BadParameter(f"{tail!r}: a number of lines, or all", param_hint="--tail")
    params: dict[str, Any] = {"details": "1", "stdout": "1", "stderr": "1", "tail": tail}
    if follow:
        params["follow"] = "1"
    if timestamps:
        params["timestamps"] = "1"
    if since:
        params["since"] = since_param(since)
    client = ManagerClient(target.context.endpoint())
    asyncio.run(print_logs(client, service, params, no_trunc))
