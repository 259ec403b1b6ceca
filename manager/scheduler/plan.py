"""The scheduler's planner: pending tasks onto nodes. Pure.

Filters as swarm's: the node is ready and active, satisfies the task's
constraints, has room for its reservations, and holds fewer than MaxReplicas
tasks of the service. Then spread: placement preferences first (the label
value with the fewest tasks of the service), then the fewest tasks of the
service, then the fewest tasks in total. A task that fits nowhere gets the
reason, counted per filter, as Docker words it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from api.constraints import Constraint, parse_constraints
from api.errors import InvalidArgument

Obj = dict[str, Any]


@dataclass(frozen=True)
class Assign:
    task_id: str
    node_id: str


@dataclass(frozen=True)
class NoSuitableNode:
    task_id: str
    reason: str


Decision = Assign | NoSuitableNode


def _get(obj: Obj, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) or {}
    return obj


def node_values(node: Obj, key: str) -> list[str]:
    """What a node answers for a constraint key (empty: the node has no value)."""
    spec, description = node.get("Spec") or {}, node.get("Description") or {}
    fixed = {
        "node.id": [node.get("ID", "")],
        "node.hostname": [description.get("Hostname", "")],
        "node.role": [spec.get("Role", "")],
        "node.platform.os": [_get(description, "Platform").get("OS", "")],
        "node.platform.arch": [_get(description, "Platform").get("Architecture", "")],
    }
    if key in fixed:
        return [str(v) for v in fixed[key]]
    for prefix, labels in (
        ("node.labels.", spec.get("Labels") or {}),
        ("engine.labels.", _get(description, "Engine").get("Labels") or {}),
    ):
        if key.startswith(prefix):
            name = key[len(prefix) :]
            return [str(labels[name])] if name in labels else []
    return []


def satisfies(node: Obj, constraints: list[Constraint]) -> bool:
    for constraint in constraints:
        values = node_values(node, constraint.key)
        if constraint.operator == "==" and not values:
            return False
        if values and not constraint.matches(*values):
            return False
    return True


@dataclass
class NodeLoad:
    """What is already placed on a node, kept current while planning."""

    total: int = 0
    by_service: Counter[str] | None = None
    cpus: int = 0
    memory: int = 0

    def count(self, service_id: str) -> int:
        return 0 if self.by_service is None else self.by_service[service_id]

    def add(self, service_id: str, cpus: int, memory: int) -> None:
        if self.by_service is None:
            self.by_service = Counter()
        self.by_service[service_id] += 1
        self.total += 1
        self.cpus += cpus
        self.memory += memory


def reservations(task: Obj) -> tuple[int, int]:
    reserved = _get(task, "Spec", "Resources", "Reservations")
    return int(reserved.get("NanoCPUs") or 0), int(reserved.get("MemoryBytes") or 0)


def _plural(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def plan_schedule(
    pending: list[Obj], nodes: list[Obj], loads: dict[str, NodeLoad]
) -> list[Decision]:
    """Place `pending` tasks; `loads` (node ID -> load) is updated as tasks land."""
    decisions: list[Decision] = []
    for task in sorted(pending, key=lambda t: (t.get("ServiceID", ""), t.get("Slot") or 0)):
        service_id = str(task.get("ServiceID", ""))
        placement = _get(task, "Spec", "Placement")
        try:
            constraints = parse_constraints(list(placement.get("Constraints") or []))
        except InvalidArgument as exc:
            decisions.append(NoSuitableNode(task["ID"], f"no suitable node ({exc.message})"))
            continue
        max_replicas = int(placement.get("MaxReplicas") or 0)
        cpus, memory = reservations(task)
        failures: Counter[str] = Counter()
        fits: list[Obj] = []
        wanted_node = str(task.get("NodeID") or "")  # global tasks come with their node
        for node in nodes:
            if wanted_node and node["ID"] != wanted_node:
                continue
            load = loads.setdefault(node["ID"], NodeLoad())
            capacity = _get(node, "Description", "Resources")
            if _get(node, "Status").get("State") != "ready":
                failures["node is not ready"] += 1
            elif _get(node, "Spec").get("Availability", "active") != "active":
                failures["node is not active"] += 1
            elif not satisfies(node, constraints):
                failures["scheduling constraints not satisfied"] += 1
            elif (cpus and load.cpus + cpus > int(capacity.get("NanoCPUs") or 0)) or (
                memory and load.memory + memory > int(capacity.get("MemoryBytes") or 0)
            ):
                failures["insufficient resources"] += 1
            elif max_replicas and load.count(service_id) >= max_replicas:
                failures["max replicas per node limit exceeded"] += 1
            else:
                fits.append(node)
        if not fits:
            detail = "; ".join(f"{why} on {_plural(n)}" for why, n in sorted(failures.items()))
            decisions.append(
                NoSuitableNode(task["ID"], f"no suitable node ({detail or 'no nodes'})")
            )
            continue
        chosen = min(fits, key=lambda n: _spread_key(n, task, fits, loads))
        loads[chosen["ID"]].add(service_id, cpus, memory)
        decisions.append(Assign(task["ID"], chosen["ID"]))
    return decisions


def _spread_key(
    node: Obj, task: Obj, fits: list[Obj], loads: dict[str, NodeLoad]
) -> tuple[Any, ...]:
    service_id = str(task.get("ServiceID", ""))
    preference_counts: list[int] = []
    for preference in _get(task, "Spec", "Placement").get("Preferences") or []:
        descriptor = str(_get(preference, "Spread").get("SpreadDescriptor") or "")
        value = (node_values(node, descriptor) or [""])[0]
        group = [n for n in fits if (node_values(n, descriptor) or [""])[0] == value]
        preference_counts.append(sum(loads[n["ID"]].count(service_id) for n in group))
    load = loads[node["ID"]]
    return (*preference_counts, load.count(service_id), load.total, node["ID"])
