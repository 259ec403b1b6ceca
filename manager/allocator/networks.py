"""Overlay network objects with their address space: a subnet (the user's,
checked for overlap, or the next free one of the cluster's pools), a gateway
and a VXLAN network identifier unique in the cluster. Pure: the caller reads
what is taken and writes the object in the same transaction."""

from __future__ import annotations

from typing import Any

from manager.allocator.ipam import (
    INGRESS_VNI,
    VXLAN_OPTION,
    Exhausted,
    IPAMError,
    check_gateway,
    check_subnet,
    check_vni,
    gateway_for,
    pick_subnet,
    pick_vni,
)
from manager.store.tables import Obj

DEFAULT_POOLS = ("10.0.0.0/8",)
DEFAULT_SUBNET_SIZE = 24
INGRESS_NAME = "ingress"


def pools_of(cluster: Obj) -> tuple[list[str], int]:
    pools = [str(p) for p in cluster.get("DefaultAddrPool") or DEFAULT_POOLS]
    return pools, int(cluster.get("SubnetSize") or DEFAULT_SUBNET_SIZE)


def pick_from_pools(pools: list[str], size: int, taken: list[str]) -> str:
    """The first free subnet of the first pool that has one."""
    for pool in pools[:-1]:
        try:
            return pick_subnet(pool, size, taken)
        except Exhausted:
            continue
    return pick_subnet(pools[-1], size, taken)


def plan_ipam(
    requested: Obj | None,
    options: dict[str, str],
    pools: list[str],
    size: int,
    taken_subnets: list[str],
    used_vnis: set[int],
) -> tuple[Obj, dict[str, str]]:
    """The IPAM section and Options of a new network; IPAMError says why not."""
    requested = requested or {}
    configs = requested.get("Config") or []
    if len(configs) > 1:
        raise IPAMError("only one IPAM config (one IPv4 subnet) per network is supported")
    given: Obj = configs[0] if configs else {}
    # netd hands out addresses from the whole subnet: refuse what it would ignore.
    if given.get("IPRange") or given.get("AuxiliaryAddresses"):
        raise IPAMError("IPAM IPRange and AuxiliaryAddresses are not supported")
    subnet_given, gateway_given = given.get("Subnet"), given.get("Gateway")
    if gateway_given and not subnet_given:
        raise IPAMError("every ip-range or gateway must have a corresponding subnet")
    if subnet_given:
        subnet = check_subnet(str(subnet_given), taken_subnets)
    else:
        subnet = pick_from_pools(pools, size, taken_subnets)
    gateway = check_gateway(subnet, str(gateway_given)) if gateway_given else gateway_for(subnet)
    if options.get(VXLAN_OPTION):
        vni = check_vni(options[VXLAN_OPTION], used_vnis)
    else:
        vni = pick_vni(used_vnis)
    ipam = {
        "Driver": requested.get("Driver") or "default",
        "Options": requested.get("Options"),
        "Config": [{"Subnet": subnet, "Gateway": gateway}],
    }
    return ipam, {**options, VXLAN_OPTION: str(vni)}


def network_object(
    network_id: str, name: str, ipam: Obj, options: dict[str, str], **flags: Any
) -> Obj:
    """Docker's network resource as the store keeps it."""
    return {
        "Name": name,
        "Id": network_id,
        "Scope": "swarm",
        "Driver": "overlay",
        "EnableIPv6": bool(flags.get("EnableIPv6")),
        "IPAM": ipam,
        "Internal": bool(flags.get("Internal")),
        "Attachable": bool(flags.get("Attachable")),
        "Ingress": bool(flags.get("Ingress")),
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": options,
        "Labels": flags.get("Labels") or {},
    }


def ingress_network(network_id: str, pools: list[str], size: int) -> Obj:
    """The routing mesh's network swarm init creates: the pool's first subnet,
    Docker's VNI 4096."""
    subnet = pick_from_pools(pools, size, [])
    ipam = {
        "Driver": "default",
        "Options": None,
        "Config": [{"Subnet": subnet, "Gateway": gateway_for(subnet)}],
    }
    options = {VXLAN_OPTION: str(INGRESS_VNI)}
    return network_object(network_id, INGRESS_NAME, ipam, options, Ingress=True)
