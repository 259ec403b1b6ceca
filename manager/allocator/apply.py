"""The reconciler's allocation step inside its transaction: which new tasks
and which nodes need addresses, the planner's decisions, the nodes' writes.

Tasks that join no network cost a dictionary lookup each: the store is
scanned for used addresses only when some task or node needs one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from manager.allocator.attachments import (
    Attach,
    Owner,
    holds_address_on,
    node_attachment,
    plan_attachments,
    task_attachment,
)
from manager.allocator.usage import NetworkInfo, network_info, used_addresses
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj


@dataclass
class TaskAllocation:
    attachments: dict[str, list[Obj]] = field(default_factory=dict)  # task ID -> attachments
    refused: dict[str, str] = field(default_factory=dict)  # task ID -> why it waits


def publishes_ingress(service: Obj) -> bool:
    """Ports published in either mode: host-mode tasks join the ingress network
    too, so netd learns which of a node's tasks are running (swarm uses the
    host's bridge for them; the extra address costs nothing else)."""
    ports = (service.get("Endpoint") or {}).get("Ports") or []
    return bool(ports)


class TaskNetworks:
    """The networks a task joins: its spec's, and the ingress network first when
    its service publishes ingress ports (swarm puts it first too). Services and
    the ingress network are read once per transaction."""

    def __init__(self, tx: ReadTx) -> None:
        self.tx = tx
        self._ingress_of_service: dict[str, bool] = {}
        self._ingress_id: str | None = None
        self._ingress_read = False

    def ingress_id(self) -> str | None:
        if not self._ingress_read:
            ingress = next((n for n in self.tx.all("network") if n.get("Ingress")), None)
            self._ingress_id = None if ingress is None else str(ingress["Id"])
            self._ingress_read = True
        return self._ingress_id

    def of(self, task: Obj) -> tuple[str, ...]:
        service_id = str(task.get("ServiceID") or "")
        ingress = self._ingress_of_service.get(service_id)
        if ingress is None:
            service = self.tx.get("service", service_id)
            ingress = self._ingress_of_service[service_id] = bool(
                service and publishes_ingress(service)
            )
        ids: list[str] = []
        if ingress and (ingress_id := self.ingress_id()) is not None:
            ids.append(ingress_id)
        for attachment in (task.get("Spec") or {}).get("Networks") or []:
            target = str(attachment.get("Target") or "")
            if target and target not in ids:
                ids.append(target)
        return tuple(ids)


def allocate_networks(tx: WriteTx, tasks: list[Obj], check_nodes: bool) -> TaskAllocation:
    """Addresses for `tasks` (new ones) that join networks and, with
    check_nodes, for every node without its ingress address. Writes the nodes
    and re-writes each network it allocated from at the version read (so a
    concurrent allocation from the same snapshot conflicts); the caller writes
    the tasks with TaskAllocation."""
    networks_of = TaskNetworks(tx)
    requests: list[tuple[Owner, tuple[str, ...]]] = [
        (("task", str(t["ID"])), nets) for t in tasks if (nets := networks_of.of(t))
    ]
    nodes: dict[str, Obj] = {}
    ingress_id = networks_of.ingress_id() if check_nodes else None
    if ingress_id is not None:
        nodes = {
            str(n["ID"]): n
            for n in tx.all("node")
            if not holds_address_on(n.get("Attachments"), ingress_id)
        }
        requests += [(("node", nid), (ingress_id,)) for nid in nodes]
    result = TaskAllocation()
    if not requests:
        return result
    objects = {str(n["Id"]): n for n in tx.all("network")}
    infos: dict[str, NetworkInfo] = {
        nid: info for nid, n in objects.items() if (info := network_info(n)) is not None
    }
    wanted = {nid for _, nets in requests for nid in nets if nid in infos}
    decisions = plan_attachments(requests, infos, used_addresses(tx, wanted))
    allocated_from: set[str] = set()
    for decision in decisions:
        kind, owner_id = decision.owner
        if not isinstance(decision, Attach):
            if kind == "task":
                result.refused[owner_id] = decision.reason
            continue
        allocated_from.update(nid for nid, _ in decision.addresses)
        if kind == "task":
            result.attachments[owner_id] = [
                task_attachment(infos[nid], address) for nid, address in decision.addresses
            ]
        else:
            node = nodes[owner_id]
            attachments = node_attachments(node.get("Attachments"), decision)
            tx.update("node", dict(node, Attachments=attachments))
    for nid in sorted(allocated_from):
        tx.update("network", objects[nid])
    return result


def node_attachments(old: list[Obj] | None, decision: Attach) -> list[Obj]:
    """A node's Attachments with the decided addresses in place of old ones."""
    networks = {nid for nid, _ in decision.addresses}
    kept = [a for a in old or [] if (a.get("Network") or {}).get("ID") not in networks]
    return kept + [node_attachment(nid, address) for nid, address in decision.addresses]


def with_ingress_address(tx: WriteTx, node: Obj) -> Obj:
    """The node with its ingress address, allocated now if it has none: for
    the writers that create or re-register a node, so that the reconciler need
    not rewrite it a moment later (and move its version under a user who just
    read it to update it)."""
    ingress = next((n for n in tx.all("network") if n.get("Ingress")), None)
    info = None if ingress is None else network_info(ingress)
    if ingress is None or info is None or holds_address_on(node.get("Attachments"), info.id):
        return node
    owner: Owner = ("node", str(node["ID"]))
    (decision,) = plan_attachments(
        [(owner, (info.id,))], {info.id: info}, used_addresses(tx, [info.id])
    )
    if not isinstance(decision, Attach):
        return node  # the subnet is full: the reconciler tries again later
    tx.update("network", ingress)  # at the version read, as allocate_networks does
    return dict(node, Attachments=node_attachments(node.get("Attachments"), decision))
