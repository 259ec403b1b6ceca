"""`clusterctl network ...`: the cluster's overlay networks."""

from __future__ import annotations

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
    inspect_as_json,
    inspect_format_option,
    key_values,
    quiet_option,
    target_options,
)
from clusterctl.output import print_ids, print_json, print_table, short_id


@click.group("network")
def network_group() -> None:
    """The cluster's overlay networks."""


@network_group.command("create")
@click.argument("name")
@click.option(
    "--driver",
    "-d",
    type=click.Choice(["overlay"]),
    default="overlay",
    show_default=True,
    help="Network driver (Shoal's networks are VXLAN overlays).",
)
@click.option("--subnet", default=None, help="IPv4 subnet in CIDR form (default: from the pool).")
@click.option("--gateway", default=None, help="Gateway address inside --subnet.")
@click.option("--attachable", is_flag=True, help="Let standalone containers attach.")
@click.option("--internal", is_flag=True, help="No egress outside the network.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Label (repeat).")
@click.option("--opt", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Driver option.")
@target_options
def network_create_command(
    name: str,
    driver: str,
    subnet: str | None,
    gateway: str | None,
    attachable: bool,
    internal: bool,
    labels: tuple[str, ...],
    options: tuple[str, ...],
    target: Target,
) -> None:
    """Create an overlay network; prints its ID.

    \b
    Example:
      clusterctl network create -d overlay --subnet 10.20.0.0/24 backend
    """
    config: dict[str, str] = {}
    if subnet:
        config["Subnet"] = subnet
    if gateway:
        config["Gateway"] = gateway
    body: dict[str, Any] = {
        "Name": name,
        "CheckDuplicate": True,
        "Driver": driver,
        "Scope": "swarm",
        "IPAM": {"Driver": "default", "Config": [config] if config else []},
        "Internal": internal,
        "Attachable": attachable,
        "Labels": key_values(labels, "--label", value_required=False),
        "Options": key_values(options, "--opt"),
    }
    created = target.call("POST", "/networks/create", body)
    click.echo(created["Id"])


def subnets(network: dict[str, Any]) -> str:
    return ",".join(c.get("Subnet", "") for c in (network.get("IPAM") or {}).get("Config") or [])


@network_group.command("ls")
@quiet_option
@click.option("--no-trunc", is_flag=True, help="Show whole IDs.")
@filter_option
@format_option
@target_options
def network_ls_command(
    quiet: bool, no_trunc: bool, filters: tuple[str, ...], output_format: str, target: Target
) -> None:
    """List the networks.

    \b
    Example:
      clusterctl network ls
      clusterctl network ls --filter name=back -q
    """
    networks = target.get("networks", filters=filters_query(filter_dict(filters)))
    if output_format == "json":
        print_json(networks)
    elif quiet:
        print_ids([n["Id"] for n in networks])
    else:
        rows = [
            [short_id(n["Id"], no_trunc), n["Name"], n["Driver"], n["Scope"], subnets(n)]
            for n in networks
        ]
        print_table(["network id", "name", "driver", "scope", "subnet"], rows)


@network_group.command("inspect")
@click.argument("networks", nargs=-1, required=True, shell_complete=complete_names("networks"))
@inspect_format_option
@target_options
def network_inspect_command(networks: tuple[str, ...], output_format: str, target: Target) -> None:
    """Show networks in detail, as a JSON list (by name, ID or ID prefix).

    \b
    Example:
      clusterctl network inspect backend
    """
    inspect_as_json(target, "networks", networks)


@network_group.command("rm")
@click.argument("networks", nargs=-1, required=True, shell_complete=complete_names("networks"))
@target_options
def network_rm_command(networks: tuple[str, ...], target: Target) -> None:
    """Remove networks (no service may still use them).

    \b
    Example:
      clusterctl network rm backend
    """

    def one(ref: str) -> None:
        target.call("DELETE", api_path("networks", ref))
        click.echo(ref)

    for_each(networks, one)
