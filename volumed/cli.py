"""`shoal-volumed`: the node's volume daemon."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import click

from api.daemon_process import cancel_on_signals, log_to_stderr
from volumed.daemon import Volumed, VolumedConfig


async def _run(config: VolumedConfig) -> None:
    cancel_on_signals()
    async with Volumed(config) as volumed:
        click.echo(f"shoal-volumed on {config.socket_path}", err=True)
        with contextlib.suppress(asyncio.CancelledError):
            await volumed.run()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The volume plugin socket (default: <data-dir>/volumed.sock).",
)
@click.option("--metrics-addr", default="", help="host:port for /metrics.")
@click.option(
    "--master",
    "masters",
    multiple=True,
    help="host:port of a SeaweedFS master, one per manager (repeat). None: local driver only.",
)
@click.option("--role", type=click.Choice(["manager", "worker"]), default="worker")
@click.option("--ip", default="127.0.0.1", show_default=True, help="This node's address.")
def main(
    data_dir: Path,
    socket_path: Path | None,
    metrics_addr: str,
    masters: tuple[str, ...],
    role: str,
    ip: str,
) -> None:
    """Run volumed: SeaweedFS processes and the volume plugin for this node.

    \b
    Example:
      shoal-volumed --data-dir /var/lib/shoal/volumed --role manager --ip 10.0.0.1 \\
        --master 10.0.0.1:9333 --master 10.0.0.2:9333 --master 10.0.0.3:9333
    """
    log_to_stderr()
    config = VolumedConfig(
        data_dir=data_dir,
        socket_path=socket_path or data_dir / "volumed.sock",
        metrics_addr=metrics_addr,
        masters=masters,
        role=role,
        ip=ip,
    )
    asyncio.run(_run(config))
