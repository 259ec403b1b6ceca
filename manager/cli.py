"""`shoal-manager`: run a manager."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click

from api.daemon_process import cancel_on_signals, log_to_stderr
from manager.daemon import Manager, ManagerConfig, ManagerError
from manager.membership import MembershipError


async def _run(config: ManagerConfig) -> None:
    cancel_on_signals()
    restart = True
    while restart:  # a join or a leave through the API restarts the manager
        restart = False
        async with Manager(config) as manager:
            click.echo(f"shoal-manager {manager.node_id} serving {config.listen_addr}", err=True)
            with contextlib.suppress(asyncio.CancelledError):
                restart = await manager.run()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Where the Raft journal, dump and keys live.",
)
@click.option(
    "--listen-addr", default="0.0.0.0:2377", show_default=True, help="host:port the API listens on."
)
@click.option("--advertise-addr", required=True, help="host:port others reach the API at.")
@click.option("--raft-addr", default="", help="host:port for Raft (default: advertise host:4242).")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Unix socket of the local API (default: <data-dir>/manager.sock).",
)
@click.option("--join", default=None, help="host:port of a manager of the cluster to join.")
@click.option("--token", default=None, help="The manager join token, with --join.")
@click.option(
    "--store",
    "store_kind",
    type=click.Choice(["raft", "etcd"]),
    default="raft",
    show_default=True,
    help="Where the cluster state lives.",
)
@click.option(
    "--etcd-endpoints", default="", help="Comma-separated etcd client URLs, with --store etcd."
)
@click.option(
    "--secrets-key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With --store etcd: the key secrets are sealed under, the same file on every "
    "manager (default: <data-dir>/secrets-key, created on first start).",
)
@click.option(
    "--volumed-socket",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="volumed's socket on this host; removing a shoal volume deletes its data "
    "through it (default: none, only the volume's record is removed).",
)
@click.option(
    "--force-new-cluster",
    is_flag=True,
    help="Restart with all this manager's data and itself as the only member.",
)
def main(
    data_dir: Path,
    listen_addr: str,
    advertise_addr: str,
    raft_addr: str,
    socket_path: Path | None,
    join: str | None,
    token: str | None,
    store_kind: str,
    etcd_endpoints: str,
    secrets_key_file: Path | None,
    volumed_socket: Path | None,
    force_new_cluster: bool,
) -> None:
    """Run a Shoal manager.

    \b
    Example:
      shoal-manager --data-dir /var/lib/shoal/manager --advertise-addr 198.18.0.11:2377
    """
    if join and not token:
        raise click.UsageError("--join needs --token")
    config = ManagerConfig(
        data_dir=data_dir,
        advertise_addr=advertise_addr,
        listen_addr=listen_addr,
        raft_addr=raft_addr,
        socket_path=socket_path,
        join=join,
        join_token=token,
        force_new_cluster=force_new_cluster,
        store=store_kind,
        etcd_endpoints=tuple(e for e in etcd_endpoints.split(",") if e),
        secrets_key_file=secrets_key_file,
        volumed_socket=volumed_socket,
    )
    log_to_stderr()
    try:
        asyncio.run(_run(config))
    except (ManagerError, MembershipError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
