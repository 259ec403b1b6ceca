"""`clusterctl service ...`: the services of the cluster."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click

from api.client import ManagerClient
from api.log_stream import FrameDecoder, split_details
from clusterctl.cluster_commands import parse_duration
from clusterctl.contexts import Contexts

context_option = click.option("--context", "context_name", default=None, help="Context to use.")
manager_option = click.option(
    "--manager", default=None, help="host:port of a manager (overrides the context)."
)


@click.group("service")
def service_group() -> None:
    """The cluster's services."""


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
        return f"{time.time() - parse_duration(text) / 1e9:.9f}"
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
@context_option
@manager_option
@click.argument("service")
def logs_command(
    follow: bool,
    tail: str,
    since: str | None,
    timestamps: bool,
    no_trunc: bool,
    context_name: str | None,
    manager: str | None,
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
    client = ManagerClient(Contexts().resolve(context_name, manager).endpoint())
    asyncio.run(print_logs(client, service, params, no_trunc))
