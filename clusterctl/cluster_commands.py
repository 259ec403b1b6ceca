"""`clusterctl cluster init`, `node ls` and `context ...`: a cluster started
from the manager's own host, and the certificate and context to drive it with
from anywhere."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import click

from api.client import ManagerClient
from api.enroll import from_local_manager
from api.security import CertFiles
from clusterctl.contexts import Context, Contexts, config_dir
from clusterctl.output import print_json, print_table

DEFAULT_SOCKET = Path("/var/lib/shoal/manager/manager.sock")
_DURATION = re.compile(r"(\d+)([hms])")


def parse_duration(text: str) -> int:
    """Go's duration as docker takes it (2160h, 90m, 1h30m) → nanoseconds."""
    parts = _DURATION.findall(text)
    if not re.fullmatch(r"(\d+[hms])+", text):
        raise click.BadParameter(f"invalid duration {text!r}: use e.g. 2160h or 90m")
    seconds = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * seconds[u] for n, u in parts) * 1_000_000_000


def call(context: Context, method: str, path: str, body: Any = None) -> Any:
    return asyncio.run(ManagerClient(context.endpoint()).request(method, path, body))


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


@click.group("cluster")
def cluster_group() -> None:
    """Create and inspect the cluster."""


@cluster_group.command("init")
@click.option("--advertise-addr", default=None, help="host:port others reach this manager at.")
@click.option("--default-addr-pool", "pools", multiple=True, help="Subnet pool for networks.")
@click.option("--cert-expiry", default="2160h", show_default=True, help="Node certificate life.")
@click.option(
    "--socket",
    type=click.Path(path_type=Path),
    default=DEFAULT_SOCKET,
    show_default=True,
    help="The unix socket of the manager on this host.",
)
@click.option("--context", "context_name", default="default", show_default=True)
def init_command(
    advertise_addr: str | None,
    pools: tuple[str, ...],
    cert_expiry: str,
    socket: Path,
    context_name: str,
) -> None:
    """Start a cluster on this host's manager, write an admin certificate and
    a context for it (in use from now on).

    \b
    Example:
      clusterctl cluster init --socket /var/lib/shoal/manager/manager.sock
    """
    local = Context("(local)", f"unix://{socket}")
    body: dict[str, Any] = {"Spec": {"CAConfig": {"NodeCertExpiry": parse_duration(cert_expiry)}}}
    if advertise_addr:
        body["AdvertiseAddr"] = advertise_addr
    if pools:
        body["DefaultAddrPool"] = list(pools)
    node_id = call(local, "POST", "/swarm/init", body)
    info = call(local, "GET", "/info")["Swarm"]
    manager = next(m["Addr"] for m in info["RemoteManagers"] if m["NodeID"] == node_id)
    context = write_admin_context(context_name, socket, manager)
    tokens = call(local, "GET", "/swarm")["JoinTokens"]
    click.echo(f"Cluster initialized: current node ({node_id}) is now a manager.")
    click.echo(f"To add a worker: shoal-agent --manager {manager} --token {tokens['Worker']} ...")
    click.echo(f"Admin certificate: {context.certs}  (context {context.name!r}, in use)")
    click.echo(f"docker CLI: {docker_hint(context)}")


@click.group("node")
def node_group() -> None:
    """The cluster's nodes."""


@node_group.command("ls")
@click.option("--context", "context_name", default=None, help="Context to use.")
@click.option("--manager", default=None, help="host:port of a manager (overrides the context).")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def node_ls_command(context_name: str | None, manager: str | None, output_format: str) -> None:
    """List the nodes.

    \b
    Example:
      clusterctl node ls
    """
    nodes = call(Contexts().resolve(context_name, manager), "GET", "/nodes")
    if output_format == "json":
        print_json(nodes)
        return
    rows = []
    for node in sorted(nodes, key=lambda n: n["Description"].get("Hostname", "")):
        status = node.get("ManagerStatus") or {}
        manager_status = "Leader" if status.get("Leader") else status.get("Reachability", "")
        rows.append(
            [
                node["ID"][:12],
                node["Description"].get("Hostname", ""),
                node["Status"]["State"].capitalize(),
                node["Spec"]["Availability"].capitalize(),
                manager_status.capitalize(),
            ]
        )
    print_table(["id", "hostname", "status", "availability", "manager status"], rows)


@click.group("context")
def context_group() -> None:
    """Named managers, each with the certificate to reach it."""


@context_group.command("create")
@click.argument("name")
@click.option("--manager", required=True, help="host:port, or unix:///path/manager.sock")
@click.option("--certs", default="", help="Directory with ca.pem, cert.pem and key.pem.")
def context_create(name: str, manager: str, certs: str) -> None:
    """Create a context.

    \b
    Example:
      clusterctl context create prod --manager 10.0.0.1:2377 --certs ~/certs
    """
    Contexts().save(Context(name, manager, str(Path(certs).resolve()) if certs else ""))
    click.echo(name)


@context_group.command("use")
@click.argument("name")
def context_use(name: str) -> None:
    """Use a context from now on. Example: clusterctl context use prod"""
    Contexts().use(name)
    click.echo(f"Current context is now {name!r}")


@context_group.command("ls")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def context_ls(output_format: str) -> None:
    """List contexts; * marks the one in use. Example: clusterctl context ls"""
    contexts = Contexts()
    current = contexts.current_name()
    every = contexts.all()
    if output_format == "json":
        print_json([dict(c.__dict__, current=c.name == current) for c in every])
        return
    rows = [[c.name + (" *" if c.name == current else ""), c.manager, c.certs] for c in every]
    print_table(["name", "manager", "certificates"], rows)


@context_group.command("rm")
@click.argument("name")
def context_rm(name: str) -> None:
    """Remove a context. Example: clusterctl context rm prod"""
    Contexts().remove(name)
    click.echo(name)
