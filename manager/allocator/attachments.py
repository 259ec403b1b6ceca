"""Addresses for tasks and nodes on overlay networks: a pure planner and the
JSON shapes the store keeps (a task's NetworksAttachments, a node's
Attachments). `manager.allocator.apply` feeds the planner from the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from manager.allocator.ipam import VXLAN_OPTION, AddressSpace, Exhausted
from manager.allocator.usage import NetworkInfo
from manager.store.tables import Obj

# Who gets addresses: ("task", ID) or ("node", ID).
Owner = tuple[str, str]


@dataclass(frozen=True)
class Attach:
    owner: Owner
    addresses: tuple[tuple[str, str], ...]  # (network ID, "10.0.1.3/24"), in request order


@dataclass(frozen=True)
class Unallocated:
    """The owner waits (it keeps no address); reason says why, for Status.Err."""

    owner: Owner
    reason: str


Decision = Attach | Unallocated


def plan_attachments(
    requests: Sequence[tuple[Owner, tuple[str, ...]]],
    networks: Mapping[str, NetworkInfo],
    used: Mapping[str, set[str]],
) -> list[Decision]:
    """One address on each requested network per owner, lowest free first.
    An owner gets all its addresses or none: what it took before a network
    ran out goes back for the next owners."""
    spaces: dict[str, AddressSpace] = {}
    decisions: list[Decision] = []
    for owner, network_ids in requests:
        missing = [nid for nid in network_ids if nid not in networks]
        if missing:
            decisions.append(Unallocated(owner, f"network {missing[0]} has no address space"))
            continue
        picked: list[tuple[str, str]] = []
        for nid in network_ids:
            info = networks[nid]
            space = spaces.get(nid)
            if space is None:
                space = spaces[nid] = AddressSpace(info.subnet, info.gateway, used.get(nid, ()))
            try:
                picked.append((nid, space.with_prefix(space.take())))
            except Exhausted as exc:
                for taken_on, address in picked:
                    spaces[taken_on].release(address)
                decisions.append(Unallocated(owner, f"network {info.name}: {exc}"))
                break
        else:
            decisions.append(Attach(owner, tuple(picked)))
    return decisions


def task_attachment(info: NetworkInfo, address: str) -> Obj:
    """One entry of a task's NetworksAttachments (Docker's shape)."""
    return {
        "Network": {
            "ID": info.id,
            "Spec": {"Name": info.name},
            "DriverState": {"Name": "overlay", "Options": {VXLAN_OPTION: str(info.vni)}},
            "IPAMOptions": {"Configs": [{"Subnet": info.subnet, "Gateway": info.gateway}]},
        },
        "Addresses": [address],
    }


def node_attachment(network_id: str, address: str) -> Obj:
    """One entry of a node's Attachments (its address on the ingress network)."""
    return {"Network": {"ID": network_id}, "Addresses": [address]}


def holds_address_on(attachments: list[Obj] | None, network_id: str) -> bool:
    return any(
        (a.get("Network") or {}).get("ID") == network_id and a.get("Addresses")
        for a in attachments or []
    )
