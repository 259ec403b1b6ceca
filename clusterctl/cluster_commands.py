"""`clusterctl cluster ...`: start a cluster on a manager's host, join another
manager to it, leave it, hand out join tokens, and show the cluster.

`init`, `join` and `leave` act on the manager of THIS host, through its unix
socket (as `docker swarm init|join|leave` act on the local daemon); the
others reach any manager through the context."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import click

from api.client import Unreachable
from api.enroll import from_local_manager
from api.errors import ApiError
from api.security import CertFiles, TokenError, parse_join_token
from clusterctl.common import Target, api_path, call, parse_duration, target_options
from clusterctl.contexts import Context, Contexts, config_dir
from clusterctl.output import print_json

# Re-exported: the service commands import these from here.
__all__ = ["DEFAULT_SOCKET", "call", "cluster_group", "docker_hint", "parse_duration"]

DEFAULT_SOCKET = Path("/var/lib/shoal/manager/manager.sock")


def write_admin_context(name: str, socket: Path, manager: str) -> Context:
    """An admin certificate from the manager's socket, and a context using it."""
    certs = config_dir() / "certs" / name
    issued = asyncio.run(from_local_manager(str(socket), "/shoal/ca/admin"))
    issued.save(CertFiles(certs))
    context = Context(name, manager, str(certs))
    contexts = Contexts()
    contexts.save(context)
    contexts.use(name)
    return context


def docker_hint(context: Context) -> str:
    return (
        f"DOCKER_HOST=tcp://{context.manager} DOCKER_TLS_VERIFY=1 "
        f"DOCKER_CERT_PATH={context.certs} docker node ls"
    )


def local_manager(socket: Path, manager: str | None) -> Context:
    """This host's manager: its socket, or --manager (another socket, or an
    address reached with the context's certificate)."""
    manager = manager or os.environ.get("CLUSTERCTL_MANAGER")
    if manager:
        return Contexts().resolve(None, manager)
    return Context("(local)", f"unix://{socket}")


socket_option = click.option(
    "--socket",
    type=click.Path(path_type=Path),
    default=DEFAULT_SOCKET,
    show_default=True,
    help="The unix socket of the manager on this host.",
)
local_manager_option = click.option(
    "--manager",
    default=None,
    help="unix:///path or host:port of the manager to act on (instead of --socket).",
)


@click.group("cluster")
def cluster_group() -> None:
    """Create, join, leave and inspect the cluster."""


@cluster_group.command("init")
@click.option("--advertise-addr", default=None, help="host:port others reach this manager at.")
@click.option("--default-addr-pool", "pools", multiple=True, help="Subnet pool for networks.")
@click.option("--cert-expiry", default="2160h", show_default=True, help="Node certificate life.")
@socket_option
@local_manager_option
@click.option("--context", "context_name", default="default", show_default=True)
def init_command(
    advertise_addr: str | None,
    pools: tuple[str, ...],
    cert_expiry: str,
    socket: Path,
    manager: str | None,
    context_name: str,
) -> None:
    """Start a cluster on this host's manager, write an admin certificate and
    a context for it (in use from now on).

    \b
    Example:
      clusterctl cluster init --socket /var/lib/shoal/manager/manager.sock
    """
    local = local_manager(socket, manager)
    body: dict[str, Any] = {"Spec": {"CAConfig": {"NodeCertExpiry": parse_duration(cert_expiry)}}}
    if advertise_addr:
        body["AdvertiseAddr"] = advertise_addr
    if pools:
        body["DefaultAddrPool"] = list(pools)
    node_id = call(local, "POST", "/swarm/init", body)
    info = call(local, "GET", "/info")["Swarm"]
    address = next(m["Addr"] for m in info["RemoteManagers"] if m["NodeID"] == node_id)
    admin_socket = local.endpoint().socket or socket
    context = write_admin_context(context_name, admin_socket, address)
    tokens = call(local, "GET", "/swarm")["JoinTokens"]
    click.echo(f"Cluster initialized: current node ({node_id}) is now a manager.")
    click.echo(f"To add a worker: shoal-agent --manager {address} --token {tokens['Worker']} ...")
    click.echo(f"Admin certificate: {context.certs}  (context {context.name!r}, in use)")
    click.echo(f"docker CLI: {docker_hint(context)}")


def wait_until_active(local: Context, timeout_ns: int) -> None:
    """After a join the manager restarts into the cluster: wait until it
    answers as an active member again."""
    deadline = time.monotonic() + timeout_ns / 1e9
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            swarm = call(local, "GET", "/info")["Swarm"]
            if swarm.get("LocalNodeState") == "active" and swarm.get("ControlAvailable"):
                return
            last = f"state {swarm.get('LocalNodeState')} {swarm.get('Error') or ''}".strip()
        except (Unreachable, ApiError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise click.ClickException(f"the manager did not come back as a member in time ({last})")


@cluster_group.command("join")
@click.option("--token", required=True, help="The cluster's manager join token.")
@click.option(
    "--timeout",
    default="2m",
    show_default=True,
    help="How long to wait for the manager to restart as a member.",
)
@click.argument("remote", metavar="MANAGER")
@socket_option
@local_manager_option
def join_command(token: str, timeout: str, remote: str, socket: Path, manager: str | None) -> None:
    """Join this host's manager to the cluster of MANAGER (host:port), as
    another manager. Workers join by starting shoal-agent with the worker token.

    \b
    Example:
      clusterctl cluster join-token manager -q      # on a member: the token
      clusterctl cluster join --token SWMTKN-1-... 10.0.0.1:2377
    """
    try:
        parse_join_token(token)
    except TokenError as exc:
        raise click.BadParameter(str(exc), param_hint="--token") from None
    wait = parse_duration(timeout)
    local = local_manager(socket, manager)
    call(local, "POST", "/swarm/join", {"RemoteAddrs": [remote], "JoinToken": token})
    wait_until_active(local, wait)
    click.echo("This node joined a swarm as a manager.")


@cluster_group.command("leave")
@click.option("--force", "-f", is_flag=True, help="Leave even if that costs the cluster quorum.")
@socket_option
@local_manager_option
def leave_command(force: bool, socket: Path, manager: str | None) -> None:
    """Take this host's manager out of the cluster (it restarts alone, empty).

    \b
    Example:
      clusterctl cluster leave --force
    """
    local = local_manager(socket, manager)
    call(local, "POST", api_path("swarm", "leave", force="1" if force else None))
    click.echo("Node left the swarm.")


def join_hint(role: str, token: str, address: str) -> str:
    if role == "worker":
        return f"shoal-agent --manager {address} --token {token} ..."
    return f"clusterctl cluster join --token {token} {address}"


@cluster_group.command("join-token")
@click.argument("role", type=click.Choice(["worker", "manager"]))
@click.option("--rotate", is_flag=True, help="Replace the token (the old one stops working).")
@click.option("--quiet", "-q", is_flag=True, help="Only print the token.")
@target_options
def join_token_command(role: str, rotate: bool, quiet: bool, target: Target) -> None:
    """Show (or rotate) the token a worker or a manager joins with.

    \b
    Example:
      clusterctl cluster join-token worker
      clusterctl cluster join-token --rotate -q manager
    """
    swarm = target.get("swarm")
    if rotate:
        flag = "rotateWorkerToken" if role == "worker" else "rotateManagerToken"
        path = api_path("swarm", "update", version=swarm["Version"]["Index"], **{flag: "true"})
        target.call("POST", path, swarm["Spec"])
        swarm = target.get("swarm")
        if not quiet:
            click.echo(f"Successfully rotated {role} join token.\n")
    token = swarm["JoinTokens"]["Worker" if role == "worker" else "Manager"]
    if quiet:
        click.echo(token)
        return
    info = target.get("info")["Swarm"]
    address = next(
        (m["Addr"] for m in info.get("RemoteManagers") or [] if m["NodeID"] == info["NodeID"]),
        "MANAGER",
    )
    click.echo(f"To add a {role} to this cluster, run the following command:\n")
    click.echo(f"    {join_hint(role, token, address)}\n")


def duration_text(nanos: int) -> str:
    seconds = nanos // 1_000_000_000
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def swarm_lines(swarm: dict[str, Any]) -> list[str]:
    """The Swarm part of `docker info`."""
    lines = [f"Swarm: {swarm.get('LocalNodeState') or 'inactive'}"]
    if swarm.get("LocalNodeState") != "active":
        return lines
    cluster = swarm.get("Cluster") or {}
    spec = cluster.get("Spec") or {}
    raft = spec.get("Raft") or {}
    lines += [
        f" NodeID: {swarm.get('NodeID', '')}",
        f" Is Manager: {str(bool(swarm.get('ControlAvailable'))).lower()}",
        f" ClusterID: {cluster.get('ID', '')}",
        f" Managers: {swarm.get('Managers', 0)}",
        f" Nodes: {swarm.get('Nodes', 0)}",
        " Default Address Pool: " + " ".join(cluster.get("DefaultAddrPool") or []),
        f" SubnetSize: {cluster.get('SubnetSize', '')}",
        f" Data Path Port: {cluster.get('DataPathPort', '')}",
        " Orchestration:",
        "  Task History Retention Limit: "
        + str((spec.get("Orchestration") or {}).get("TaskHistoryRetentionLimit", "")),
        " Raft:",
        f"  Snapshot Interval: {raft.get('SnapshotInterval', '')}",
        f"  Number of Old Snapshots to Retain: {raft.get('KeepOldSnapshots') or 0}",
        f"  Heartbeat Tick: {raft.get('HeartbeatTick', '')}",
        f"  Election Tick: {raft.get('ElectionTick', '')}",
        " Dispatcher:",
        "  Heartbeat Period: "
        + duration_text(int((spec.get("Dispatcher") or {}).get("HeartbeatPeriod") or 0)),
        " CA Configuration:",
        "  Expiry Duration: "
        + duration_text(int((spec.get("CAConfig") or {}).get("NodeCertExpiry") or 0)),
        " Autolock Managers: "
        + str(bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers"))).lower(),
        f" Root Rotation In Progress: {str(bool(cluster.get('RootRotationInProgress'))).lower()}",
        f" Node Address: {swarm.get('NodeAddr', '')}",
        " Manager Addresses:",
    ]
    lines += [
        f"  {m['Addr']}"
        for m in sorted(swarm.get("RemoteManagers") or [], key=lambda m: str(m["Addr"]))
    ]
    return lines


@cluster_group.command("info")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@target_options
def info_command(output_format: str, target: Target) -> None:
    """Show the cluster: its ID, managers, nodes, address pools and settings.

    \b
    Example:
      clusterctl cluster info
      clusterctl cluster info --format json
    """
    swarm = target.get("info")["Swarm"]
    if output_format == "json":
        print_json(swarm)
        return
    for line in swarm_lines(swarm):
        click.echo(line)
