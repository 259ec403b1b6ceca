"""A service's Endpoint: published ports (ingress ports get a PublishedPort)
and, in vip mode, one virtual IP per network its tasks join. Pure planners,
then `allocate_endpoint`, which reads what is taken in the caller's write
transaction and keeps what an update leaves unchanged."""

from __future__ import annotations

from collections.abc import Mapping

from manager.allocator.ipam import AddressSpace, IPAMError, pick_port
from manager.allocator.usage import ingress_network, ingress_ports, network_info, used_addresses
from manager.store.store import WriteTx
from manager.store.tables import Obj

RPC_INVALID = "rpc error: code = InvalidArgument desc = "
DNSRR_INGRESS = (
    RPC_INVALID + "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
)

PortKey = tuple[str, int]  # (protocol, published port)


class EndpointError(IPAMError):
    """An endpoint that cannot be allocated; the message is Docker's."""


def endpoint_spec_of(spec: Obj) -> Obj:
    return spec.get("EndpointSpec") or {"Mode": "vip"}


def normalized_port(port: Obj) -> Obj:
    shown: Obj = {"Name": port["Name"]} if port.get("Name") else {}
    shown.update(
        Protocol=str(port.get("Protocol") or "tcp"),
        TargetPort=int(port.get("TargetPort") or 0),
        PublishedPort=int(port.get("PublishedPort") or 0),
        PublishMode=str(port.get("PublishMode") or "ingress"),
    )
    return shown


def is_ingress(port: Obj) -> bool:
    return (port.get("PublishMode") or "ingress") == "ingress"


def plan_ports(
    spec_ports: list[Obj], old_ports: list[Obj], taken: Mapping[PortKey, tuple[str, str]]
) -> list[Obj]:
    """The spec's ports with defaults written in and every ingress port's
    PublishedPort set: the one asked for (unless another service has it), the
    one this service had for the same target, or the lowest free one."""
    ports = [normalized_port(p) for p in spec_ports]
    held: set[PortKey] = set(taken)
    # Ports asked for first, so that no automatic pick takes one of them.
    for port in ports:
        if not is_ingress(port) or not port["PublishedPort"]:
            continue
        key = (port["Protocol"], port["PublishedPort"])
        if key in taken:
            name, service_id = taken[key]
            raise EndpointError(
                f"{RPC_INVALID}port '{port['PublishedPort']}' is already in use by service "
                f"'{name}' ({service_id}) as an ingress port"
            )
        held.add(key)
    previous = [normalized_port(p) for p in old_ports if is_ingress(p) and p.get("PublishedPort")]
    for port in ports:
        if not is_ingress(port) or port["PublishedPort"]:
            continue
        for old in previous:
            key = (port["Protocol"], old["PublishedPort"])
            same = (old["Protocol"], old["TargetPort"]) == (port["Protocol"], port["TargetPort"])
            if same and key not in held:
                port["PublishedPort"] = old["PublishedPort"]
                held.add(key)
                previous.remove(old)
                break
        else:
            used = {number for protocol, number in held if protocol == port["Protocol"]}
            port["PublishedPort"] = pick_port(used)
            held.add((port["Protocol"], port["PublishedPort"]))
    return ports


def vip_networks(spec: Obj, ports: list[Obj], ingress_id: str | None) -> list[str]:
    """The networks a vip-mode service gets a VIP on: ingress first when it
    publishes ingress ports, then its tasks' networks."""
    ids = [ingress_id] if ingress_id and any(is_ingress(p) for p in ports) else []
    for attachment in (spec.get("TaskTemplate") or {}).get("Networks") or []:
        target = str(attachment.get("Target") or "")
        if target and target not in ids:
            ids.append(target)
    return ids


def plan_vips(network_ids: list[str], old_vips: list[Obj]) -> tuple[dict[str, Obj], list[str]]:
    """VIPs to keep (on networks still joined), and networks that need one."""
    kept = {
        str(v["NetworkID"]): v
        for v in old_vips
        if v.get("NetworkID") in network_ids and v.get("Addr")
    }
    return kept, [nid for nid in network_ids if nid not in kept]


def allocate_endpoint(tx: WriteTx, service_id: str, spec: Obj, old: Obj | None) -> Obj:
    """The Endpoint for a service being created or updated (spec's network
    targets already resolved to IDs). Raises EndpointError (or IPAMError)."""
    old = old or {}
    for attachment in (spec.get("TaskTemplate") or {}).get("Networks") or []:
        network = tx.get("network", str(attachment.get("Target") or ""))
        if network is not None and network.get("Ingress"):
            # Tasks join the ingress network through published ports only.
            raise EndpointError(
                f"{RPC_INVALID}service cannot be explicitly attached to the ingress network "
                f'"{network["Name"]}"'
            )
    endpoint_spec = endpoint_spec_of(spec)
    mode = endpoint_spec.get("Mode") or "vip"
    spec_ports = endpoint_spec.get("Ports") or []
    publishing = any(is_ingress(p) for p in spec_ports)
    if mode == "dnsrr" and publishing:
        raise EndpointError(DNSRR_INGRESS)
    taken = ingress_ports(tx, service_id) if publishing else {}
    ports = plan_ports(spec_ports, old.get("Ports") or [], taken)
    endpoint: Obj = {"Spec": endpoint_spec}
    if ports:
        endpoint["Ports"] = ports
    ingress = ingress_network(tx) if publishing else None
    rewrite: dict[str, Obj] = {}
    if ingress is not None:
        # Rewritten at the version read: two services claiming ports at once conflict.
        rewrite[str(ingress["Id"])] = ingress
    if mode == "vip":
        ingress_id = None if ingress is None else str(ingress["Id"])
        network_ids = vip_networks(spec, ports, ingress_id)
        kept, missing = plan_vips(network_ids, old.get("VirtualIPs") or [])
        fresh = _new_vips(tx, missing, rewrite)
        vips = [kept.get(nid) or fresh[nid] for nid in network_ids]
        if vips:
            endpoint["VirtualIPs"] = vips
    for network in rewrite.values():
        tx.update("network", network)
    return endpoint


def _new_vips(tx: WriteTx, network_ids: list[str], rewrite: dict[str, Obj]) -> dict[str, Obj]:
    if not network_ids:
        return {}
    used = used_addresses(tx, network_ids)
    vips: dict[str, Obj] = {}
    for nid in network_ids:
        network = tx.get("network", nid)
        info = None if network is None else network_info(network)
        if network is None or info is None:
            raise EndpointError(f"network {nid} has no address space")
        space = AddressSpace(info.subnet, info.gateway, used[nid])
        vips[nid] = {"NetworkID": nid, "Addr": space.with_prefix(space.take())}
        rewrite[nid] = network
    return vips
