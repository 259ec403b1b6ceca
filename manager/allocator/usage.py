"""What is taken, read from the store: subnets, VNIs, addresses, ingress ports.

Nothing is kept between transactions: an address is free again as soon as no
object holds it (a task ended or was deleted, a service dropped a VIP, a node
was removed). These reads scan live tasks, so callers make them only when
something actually needs allocating.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from api.task import TaskState
from manager.allocator.ipam import VXLAN_OPTION, host_of
from manager.store.store import ReadTx
from manager.store.tables import Obj

# Observed states of tasks that may still run, so still hold their addresses.
LIVE_STATES = tuple(s.to_json() for s in TaskState if s <= TaskState.RUNNING)


@dataclass(frozen=True)
class NetworkInfo:
    """What allocation needs of a network object."""

    id: str
    name: str
    vni: int
    subnet: str
    gateway: str
    internal: bool = False
    ingress: bool = False


def network_info(network: Obj) -> NetworkInfo | None:
    """None for a network without an allocated subnet and VNI."""
    configs = (network.get("IPAM") or {}).get("Config") or []
    vni = str((network.get("Options") or {}).get(VXLAN_OPTION) or "")
    if not configs or not configs[0].get("Subnet") or not vni.isdigit():
        return None
    return NetworkInfo(
        id=str(network["Id"]),
        name=str(network.get("Name") or ""),
        vni=int(vni),
        subnet=str(configs[0]["Subnet"]),
        gateway=str(configs[0].get("Gateway") or ""),
        internal=bool(network.get("Internal")),
        ingress=bool(network.get("Ingress")),
    )


def taken_subnets(tx: ReadTx) -> list[str]:
    return [
        str(c["Subnet"])
        for n in tx.all("network")
        for c in (n.get("IPAM") or {}).get("Config") or []
        if c.get("Subnet")
    ]


def used_vnis(tx: ReadTx) -> set[int]:
    return {info.vni for n in tx.all("network") if (info := network_info(n)) is not None}


def ingress_network(tx: ReadTx) -> Obj | None:
    return next((n for n in tx.all("network") if n.get("Ingress")), None)


def live_tasks(tx: ReadTx) -> Iterator[Obj]:
    for state in LIVE_STATES:
        yield from tx.find("task", "state", state)


def attachment_addresses(attachments: list[Obj] | None) -> Iterator[tuple[str, str]]:
    """(network ID, address) of each address in NetworksAttachments or Attachments."""
    for attachment in attachments or []:
        network_id = str((attachment.get("Network") or {}).get("ID") or "")
        for address in attachment.get("Addresses") or []:
            yield network_id, str(address)


def used_addresses(tx: ReadTx, network_ids: Collection[str]) -> dict[str, set[str]]:
    """Per network, the addresses held now (gateways are the caller's to add):
    service VIPs, addresses of tasks that may still run, nodes' addresses."""
    used: dict[str, set[str]] = {nid: set() for nid in network_ids}
    if not used:
        return used
    for service in tx.all("service"):
        for vip in (service.get("Endpoint") or {}).get("VirtualIPs") or []:
            if vip.get("NetworkID") in used and vip.get("Addr"):
                used[vip["NetworkID"]].add(host_of(str(vip["Addr"])))
    for task in live_tasks(tx):
        for network_id, address in attachment_addresses(task.get("NetworksAttachments")):
            if network_id in used:
                used[network_id].add(host_of(address))
    for node in tx.all("node"):
        for network_id, address in attachment_addresses(node.get("Attachments")):
            if network_id in used:
                used[network_id].add(host_of(address))
    return used


def tasks_holding(tx: ReadTx, network_id: str) -> list[str]:
    """IDs of tasks that may still run with an address on the network."""
    return [
        str(task["ID"])
        for task in live_tasks(tx)
        if any(
            nid == network_id for nid, _ in attachment_addresses(task.get("NetworksAttachments"))
        )
    ]


def ingress_ports(tx: ReadTx, except_service: str) -> dict[tuple[str, int], tuple[str, str]]:
    """(protocol, published port) -> (service name, ID) of other services'
    ingress ports."""
    taken: dict[tuple[str, int], tuple[str, str]] = {}
    for service in tx.all("service"):
        if service["ID"] == except_service:
            continue
        name = str((service.get("Spec") or {}).get("Name") or "")
        for port in (service.get("Endpoint") or {}).get("Ports") or []:
            if port.get("PublishMode", "ingress") == "ingress" and port.get("PublishedPort"):
                key = (str(port.get("Protocol") or "tcp"), int(port["PublishedPort"]))
                taken[key] = (name, str(service["ID"]))
    return taken
