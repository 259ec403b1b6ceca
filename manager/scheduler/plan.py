"""The scheduler's planner: pending tasks onto nodes. Pure.

Filters as swarm's: the node is ready and active, satisfies the task's
constraints, has room for its reservations, and holds fewer than MaxReplicas
tasks of the service. Then spread: placement preferences first (the label
value with the fewest tasks of the service), then the fewest tasks of the
service, then the fewest tasks in total. A task that fits nowhere gets the
reason, counted per filter, as Docker words it.

A task that mounts a distributed volume read-write that must stay on one
node goes only where no other node holds it (scheduler/volumes.py).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from typing import Any

from api.constraints import Constraint, parse_constraints
from api.errors import InvalidArgument
from manager.scheduler.volumes import VolumeHolders

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


def _shape(task: Obj) -> str:
    """Tasks with the same shape pass the same filters: one service's tasks,
    bar global tasks, which each name their node."""
    placement = _get(task, "Spec", "Placement")
    return repr(
        (
            task.get("ServiceID", ""),
            task.get("NodeID") or "",
            placement.get("Constraints") or [],
            placement.get("MaxReplicas") or 0,
            placement.get("Preferences") or [],
            reservations(task),
        )
    )


def plan_schedule(
    pending: list[Obj],
    nodes: list[Obj],
    loads: dict[str, NodeLoad],
    volumes: VolumeHolders | None = None,
) -> list[Decision]:
    """Place `pending` tasks; `loads` (node ID -> load) and `volumes` (who
    holds which volume) are updated as tasks land.

    Tasks are taken by service and slot, in runs of the same shape: the
    filters that do not depend on load run once per run, and without
    placement preferences the next node comes off a heap ordered as the
    spread wants (O(log N) per task; swarmkit keeps a node heap the same way)."""
    decisions: list[Decision] = []
    by_id = {node["ID"]: node for node in nodes}
    for node in nodes:
        loads.setdefault(node["ID"], NodeLoad())
    holders = volumes if volumes is not None else VolumeHolders({})
    claims = {t["ID"]: holders.claims(t) for t in pending}
    ordered = sorted(pending, key=lambda t: (t.get("ServiceID", ""), t.get("Slot") or 0))

    def shape(task: Obj) -> tuple[str, tuple[str, ...]]:
        return _shape(task), claims[task["ID"]]

    start = 0
    while start < len(ordered):
        first = shape(ordered[start])
        end = start + 1
        while end < len(ordered) and shape(ordered[end]) == first:
            end += 1
        place = _Placing(by_id, loads, holders, first[1])
        decisions += place.run(ordered[start:end], nodes)
        start = end
    return decisions


@dataclass
class _Run:
    """What one run of same-shaped tasks needs."""

    service_id: str
    cpus: int
    memory: int
    max_replicas: int
    candidates: list[Obj]  # nodes that pass the filters that ignore load
    failures: Counter[str]  # nodes that did not, by reason

    def room_failure(self, node: Obj, load: NodeLoad) -> str:
        capacity = _get(node, "Description", "Resources")
        if (self.cpus and load.cpus + self.cpus > int(capacity.get("NanoCPUs") or 0)) or (
            self.memory and load.memory + self.memory > int(capacity.get("MemoryBytes") or 0)
        ):
            return "insufficient resources"
        if self.max_replicas and load.count(self.service_id) >= self.max_replicas:
            return "max replicas per node limit exceeded"
        return ""

    def no_fit(self, loads: dict[str, NodeLoad]) -> str:
        failures = Counter(self.failures)
        for node in self.candidates:
            why = self.room_failure(node, loads[node["ID"]])
            if why:
                failures[why] += 1
        detail = "; ".join(f"{why} on {_plural(n)}" for why, n in sorted(failures.items()))
        return f"no suitable node ({detail or 'no nodes'})"


def _run_of(first: Obj, nodes: list[Obj], by_id: dict[str, Obj]) -> _Run:
    placement = _get(first, "Spec", "Placement")
    constraints = parse_constraints(list(placement.get("Constraints") or []))
    wanted = str(first.get("NodeID") or "")  # global tasks come with their node
    scope = ([by_id[wanted]] if wanted in by_id else []) if wanted else nodes
    failures: Counter[str] = Counter()
    candidates = []
    for node in scope:
        if _get(node, "Status").get("State") != "ready":
            failures["node is not ready"] += 1
        elif _get(node, "Spec").get("Availability", "active") != "active":
            failures["node is not active"] += 1
        elif not satisfies(node, constraints):
            failures["scheduling constraints not satisfied"] += 1
        else:
            candidates.append(node)
    cpus, memory = reservations(first)
    service_id = str(first.get("ServiceID", ""))
    max_replicas = int(placement.get("MaxReplicas") or 0)
    return _Run(service_id, cpus, memory, max_replicas, candidates, failures)


@dataclass
class _Placing:
    """One run's placement: the cluster as planned so far, and the volumes
    the run's tasks need to themselves on their node."""

    by_id: dict[str, Obj]
    loads: dict[str, NodeLoad]
    volumes: VolumeHolders
    claims: tuple[str, ...]

    def run(self, run_tasks: list[Obj], nodes: list[Obj]) -> list[Decision]:
        try:
            run = _run_of(run_tasks[0], nodes, self.by_id)
        except InvalidArgument as exc:
            reason = f"no suitable node ({exc.message})"
            return [NoSuitableNode(t["ID"], reason) for t in run_tasks]
        if _get(run_tasks[0], "Spec", "Placement").get("Preferences") or self.claims:
            return [self.one(task, run) for task in run_tasks]
        return self.by_heap(run_tasks, run)

    def by_heap(self, run_tasks: list[Obj], run: _Run) -> list[Decision]:
        loads, service_id = self.loads, run.service_id
        heap = [
            (loads[n["ID"]].count(service_id), loads[n["ID"]].total, n["ID"])
            for n in run.candidates
        ]
        heapq.heapify(heap)
        decisions: list[Decision] = []
        for index, task in enumerate(run_tasks):
            while heap:
                _, _, node_id = heap[0]
                load = loads[node_id]
                if not run.room_failure(self.by_id[node_id], load):
                    break
                heapq.heappop(heap)  # it only gets fuller: out for the rest of the run
            if not heap:
                # Loads only grow, so the rest of the run fits nowhere either.
                reason = run.no_fit(loads)
                return decisions + [NoSuitableNode(t["ID"], reason) for t in run_tasks[index:]]
            load.add(service_id, run.cpus, run.memory)
            heapq.heapreplace(heap, (load.count(service_id), load.total, node_id))
            self.volumes.hold(task, node_id)  # a read-only mount holds its volume too
            decisions.append(Assign(task["ID"], node_id))
        return decisions

    def one(self, task: Obj, run: _Run) -> Decision:
        """One task, every node weighed: spread over label values first (the
        value whose nodes hold the fewest tasks of the service), then as
        without preferences; only where its volumes are free."""
        loads = self.loads
        fits = [n for n in run.candidates if not run.room_failure(n, loads[n["ID"]])]
        fits, held = self.volumes_free(task, fits)
        if not fits:
            return NoSuitableNode(task["ID"], held or run.no_fit(loads))
        service_id = run.service_id
        descriptors = [
            str(_get(preference, "Spread").get("SpreadDescriptor") or "")
            for preference in _get(task, "Spec", "Placement").get("Preferences") or []
        ]
        values = {n["ID"]: [(node_values(n, d) or [""])[0] for d in descriptors] for n in fits}
        per_value: list[Counter[str]] = [Counter() for _ in descriptors]
        for node in fits:
            for i, value in enumerate(values[node["ID"]]):
                per_value[i][value] += loads[node["ID"]].count(service_id)

        def key(node: Obj) -> tuple[Any, ...]:
            load = loads[node["ID"]]
            counts = [per_value[i][v] for i, v in enumerate(values[node["ID"]])]
            return (*counts, load.count(service_id), load.total, node["ID"])

        chosen = min(fits, key=key)["ID"]
        loads[chosen].add(service_id, run.cpus, run.memory)
        self.volumes.hold(task, chosen)
        return Assign(task["ID"], chosen)

    def volumes_free(self, task: Obj, fits: list[Obj]) -> tuple[list[Obj], str]:
        """The nodes where no other node holds the task's claimed volumes, and
        the reason when there are none: the first volume held elsewhere."""
        if not self.claims:
            return fits, ""
        free, reason = [], ""
        for node in fits:
            volume, holder = self.volumes.held_elsewhere(task, self.claims, node["ID"])
            if not volume:
                free.append(node)
            elif not reason:
                where = _get(self.by_id.get(holder, {}), "Description").get("Hostname") or holder
                reason = f"no suitable node (volume {volume} is in use on node {where})"
        return free, reason
