"""`shoal-agent`: run a node's agent."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import click

from agent.daemon import Agent, AgentConfig
from agent.identity import JoinRefused
from api.daemon_process import cancel_on_signals, log_to_stderr
from runtime.config import RuntimeConfig


async def _run(config: AgentConfig) -> None:
    cancel_on_signals()
    try:
        async with Agent(config) as agent:
            click.echo(f"shoal-agent {agent.node_id} running", err=True)
            with contextlib.suppress(asyncio.CancelledError):
                await agent.run()
    except JoinRefused as exc:
        raise click.ClickException(f"cannot join the cluster: {exc}") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option(
    "--manager",
    "managers",
    multiple=True,
    required=True,
    help="host:port of a manager's API (repeat for each).",
)
@click.option(
    "--token", default="", help="A worker join token (needed until the node has a certificate)."
)
@click.option(
    "--manager-socket",
    type=click.Path(path_type=Path),
    default=None,
    help="The unix socket of a manager on this host: the agent takes that node's identity.",
)
@click.option(
    "--netd-socket",
    type=click.Path(path_type=Path),
    default=None,
    help="netd's socket on this host: containers get overlay networks, egress and DNS.",
)
@click.option(
    "--volumed-socket",
    type=click.Path(path_type=Path),
    default=None,
    help="volumed's socket on this host: tasks get local and distributed volumes.",
)
@click.option(
    "--containerd-socket",
    type=click.Path(path_type=Path),
    default=Path("/run/containerd/containerd.sock"),
    show_default=True,
)
@click.option("--cgroup-parent", default="shoal", show_default=True)
@click.option(
    "--insecure-registry",
    "insecure",
    multiple=True,
    help="A registry reached over plain HTTP (repeat for each).",
)
@click.option("--advertise-addr", default="", help="This node's address.")
@click.option("--metrics-addr", default="", help="host:port for /metrics.")
@click.option("--api-addr", default="", help="host:port for the agent's API (HTTPS).")
def main(
    data_dir: Path,
    managers: tuple[str, ...],
    token: str,
    manager_socket: Path | None,
    netd_socket: Path | None,
    volumed_socket: Path | None,
    containerd_socket: Path,
    cgroup_parent: str,
    insecure: tuple[str, ...],
    advertise_addr: str,
    metrics_addr: str,
    api_addr: str,
) -> None:
    """Run a Shoal agent: this node's tasks, through containerd.

    \b
    Example:
      shoal-agent --data-dir /var/lib/shoal/agent --manager 198.18.0.11:2377 --token SWMTKN-1-...
    """
    log_to_stderr()
    runtime = RuntimeConfig(
        socket=containerd_socket,
        state_dir=data_dir / "runtime",
        cgroup_parent=cgroup_parent,
        insecure_registries=frozenset(insecure),
    )
    config = AgentConfig(
        data_dir=data_dir,
        managers=managers,
        token=token,
        manager_socket=manager_socket,
        netd_socket=netd_socket,
        volumed_socket=volumed_socket,
        runtime=runtime,
        advertise_addr=advertise_addr,
        metrics_addr=metrics_addr,
        api_addr=api_addr,
    )
    asyncio.run(_run(config))
