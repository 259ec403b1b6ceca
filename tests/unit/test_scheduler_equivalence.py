"""The fast planner (runs of same-shaped tasks, a node heap) decides exactly
what the plain one would: every node checked for every task, the minimum of
the spread key taken. Random clusters, services and loads."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from api.constraints import parse_constraints
from api.errors import InvalidArgument
from manager.scheduler.plan import (
    Assign,
    Decision,
    NodeLoad,
    NoSuitableNode,
    node_values,
    plan_schedule,
    reservations,
    satisfies,
)

Obj = dict[str, Any]


def _get(obj: Obj, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) or {}
    return obj


def spread_key(
    node: Obj, placement: Obj, fits: list[Obj], loads: dict[str, NodeLoad], service_id: str
) -> tuple[Any, ...]:
    counts = []
    for preference in placement.get("Preferences") or []:
        descriptor = preference["Spread"]["SpreadDescriptor"]
        value = (node_values(node, descriptor) or [""])[0]
        group = [n for n in fits if (node_values(n, descriptor) or [""])[0] == value]
        counts.append(sum(loads[n["ID"]].count(service_id) for n in group))
    load = loads[node["ID"]]
    return (*counts, load.count(service_id), load.total, node["ID"])


def reference(pending: list[Obj], nodes: list[Obj], loads: dict[str, NodeLoad]) -> list[Decision]:
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
        fits = []
        wanted = str(task.get("NodeID") or "")
        for node in nodes:
            if wanted and node["ID"] != wanted:
                continue
            load = loads.setdefault(node["ID"], NodeLoad())
            capacity = _get(node, "Description", "Resources")
            if node["Status"]["State"] != "ready":
                failures["node is not ready"] += 1
            elif node["Spec"]["Availability"] != "active":
                failures["node is not active"] += 1
            elif not satisfies(node, constraints):
                failures["scheduling constraints not satisfied"] += 1
            elif (cpus and load.cpus + cpus > capacity["NanoCPUs"]) or (
                memory and load.memory + memory > capacity["MemoryBytes"]
            ):
                failures["insufficient resources"] += 1
            elif max_replicas and load.count(service_id) >= max_replicas:
                failures["max replicas per node limit exceeded"] += 1
            else:
                fits.append(node)
        if not fits:
            detail = "; ".join(
                f"{why} on {n} node{'s' if n != 1 else ''}" for why, n in sorted(failures.items())
            )
            decisions.append(
                NoSuitableNode(task["ID"], f"no suitable node ({detail or 'no nodes'})")
            )
            continue

        chosen = min(fits, key=lambda n: spread_key(n, placement, fits, loads, service_id))
        loads[chosen["ID"]].add(service_id, cpus, memory)
        decisions.append(Assign(task["ID"], chosen["ID"]))
    return decisions


def cluster(rng: random.Random) -> list[Obj]:
    return [
        {
            "ID": f"n{i:02d}",
            "Spec": {
                "Role": rng.choice(["worker", "manager"]),
                "Availability": rng.choice(["active"] * 5 + ["pause", "drain"]),
                "Labels": {"zone": rng.choice("abc")} if rng.random() < 0.9 else {},
            },
            "Description": {
                "Hostname": f"h{i}",
                "Resources": {"NanoCPUs": rng.choice([2, 4]) * 10**9, "MemoryBytes": 8 << 30},
            },
            "Status": {"State": rng.choice(["ready"] * 6 + ["down"])},
        }
        for i in range(rng.randint(0, 12))
    ]


def tasks(rng: random.Random, nodes: list[Obj]) -> list[Obj]:
    pending = []
    for s in range(rng.randint(1, 5)):
        placement: Obj = {}
        if rng.random() < 0.3:
            placement["Constraints"] = [rng.choice(["node.role==worker", "node.labels.zone!=a"])]
        if rng.random() < 0.3:
            placement["MaxReplicas"] = rng.randint(1, 3)
        if rng.random() < 0.3:
            placement["Preferences"] = [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]
        if rng.random() < 0.1:
            placement["Constraints"] = ["node.role=manager"]  # invalid: one '='
        reserve = {"NanoCPUs": rng.choice([0, 5 * 10**8, 10**9])} if rng.random() < 0.4 else {}
        spec = {"Placement": placement, "Resources": {"Reservations": reserve}}
        for slot in range(1, rng.randint(1, 30)):
            task: Obj = {"ID": f"t{s}-{slot}", "ServiceID": f"s{s}", "Slot": slot, "Spec": spec}
            if nodes and rng.random() < 0.1:
                task["NodeID"] = rng.choice(nodes)["ID"]  # a global task names its node
            pending.append(task)
    return pending


@pytest.mark.parametrize("seed", range(150))
def test_the_fast_planner_matches_the_plain_one(seed: int) -> None:
    rng = random.Random(seed)
    nodes = cluster(rng)
    pending = tasks(rng, nodes)
    preload = {n["ID"]: rng.randint(0, 3) for n in nodes}

    def loads() -> dict[str, NodeLoad]:
        made = {}
        for node_id, count in preload.items():
            load = NodeLoad()
            for _ in range(count):
                load.add("s0", 0, 0)
            made[node_id] = load
        return made

    assert plan_schedule(pending, nodes, loads()) == reference(pending, nodes, loads())
