"""`shoal-netd`: the node's network daemon."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import click

from api.daemon_process import cancel_on_signals, log_to_stderr
from netd.daemon import Netd, NetdConfig


async def _run(config: NetdConfig) -> None:
    cancel_on_signals()
    async with Netd(config) as netd:
        click.echo(f"shoal-netd on {config.socket_path}", err=True)
        with contextlib.suppress(asyncio.CancelledError):
            await netd.run()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option("--manager", "managers", multiple=True, required=True, help="host:port (repeat).")
@click.option(
    "--cert-dir",
    type=click.Path(path_type=Path),
    required=True,
    help="The node's certificate directory (the agent's), to reach the managers with.",
)
@click.option("--node-addr", required=True, help="This node's underlay IP (VXLAN endpoint).")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The agent's API socket (default: <data-dir>/netd.sock).",
)
@click.option("--metrics-addr", default="", help="host:port for /metrics.")
@click.option("--netns-prefix", default="shoal-ct", show_default=True)
def main(
    data_dir: Path,
    managers: tuple[str, ...],
    cert_dir: Path,
    node_addr: str,
    socket_path: Path | None,
    metrics_addr: str,
    netns_prefix: str,
) -> None:
    """Run netd: overlay networks, DNS and load balancing for this node's containers.

    \b
    Example:
      shoal-netd --data-dir /var/lib/shoal/netd --manager 10.0.0.1:2377 \\
        --cert-dir /var/lib/shoal/agent/certificates --node-addr 10.0.0.2
    """
    log_to_stderr()
    config = NetdConfig(
        data_dir=data_dir,
        managers=managers,
        cert_dir=cert_dir,
        node_addr=node_addr,
        socket_path=socket_path or data_dir / "netd.sock",
        metrics_addr=metrics_addr,
        netns_prefix=netns_prefix,
    )
    asyncio.run(_run(config))
