"""Scheduler throughput: 1,000 simulated nodes and 10,000 tasks in one process.

    python -m bench.scheduler [--nodes 1000] [--tasks 10000] [--services 10]

Fake agents, real store: the nodes are written as the dispatcher registers
agents (no agent process runs), into the manager's own store (StoreState
behind the in-memory proposer: the same state machine and batches as Raft,
without the network). The leader's Reconciler runs as it does on a manager.
Services totalling --tasks replicas are created (one write each, as the API
does; the first is pinned to a third of the nodes and reserves CPU and memory,
so the constraint and resource filters work too), and the clock runs until
every task is `assigned` to a node in the store: orchestrated, allocated,
placed and committed. Prints tasks placed and committed per second, the store
writes it took, the spread over nodes, and the planner alone on the same input.

Target (the issue): at least 2,000 tasks placed and committed per second.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from api.base import new_id
from manager.http.swarm import SECOND_NS, default_swarm_spec
from manager.orchestrator.apply import new_task
from manager.orchestrator.plan import CreateTask
from manager.reconciler import Reconciler
from manager.scheduler.plan import Assign, NodeLoad, plan_schedule
from manager.store.proposer import MemoryProposer
from manager.store.state import Action, BatchResult, StoreState
from manager.store.store import Store, WriteTx

Obj = dict[str, Any]
ZONES = ("a", "b", "c")
POLL_SECONDS = 0.05
DEADLINE_SECONDS = 300.0


class CountingProposer:
    """The in-memory proposer, counting what reaches the log."""

    def __init__(self, inner: MemoryProposer) -> None:
        self.inner = inner
        self.proposals = 0
        self.actions = 0

    async def propose(self, actions: list[Action], timestamp: str) -> BatchResult:
        self.proposals += 1
        self.actions += len(actions)
        return await self.inner.propose(actions, timestamp)

    def is_leader(self) -> bool:
        return True

    async def read_barrier(self) -> None:
        return None


def fake_agent(n: int) -> Obj:
    """The node enroll_node writes for a registering agent, then labelled by an
    operator (a zone) so that a constraint has something to select."""
    return {
        "ID": new_id(),
        "Agent": True,
        "Description": {
            "Hostname": f"worker-{n:04d}",
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": 4 * SECOND_NS, "MemoryBytes": 8 << 30},
            "Engine": {"EngineVersion": "20.10.24", "Labels": {}, "Plugins": []},
            "TLSInfo": {},
        },
        "Spec": {
            "Labels": {"zone": ZONES[n % len(ZONES)]},
            "Role": "worker",
            "Availability": "active",
        },
        "Status": {"State": "ready", "Message": "", "Addr": f"10.{n // 250}.{n % 250}.1"},
    }


def services(count: int, tasks: int) -> list[Obj]:
    made = []
    for i in range(count):
        replicas = tasks // count + (1 if i < tasks % count else 0)
        template: Obj = {"ContainerSpec": {"Image": "busybox", "Command": ["sleep", "1d"]}}
        if i == 0:
            template["Placement"] = {"Constraints": ["node.labels.zone==a"]}
            reserve = {"NanoCPUs": SECOND_NS // 10, "MemoryBytes": 64 << 20}
            template["Resources"] = {"Reservations": reserve}
        made.append(
            {
                "ID": new_id(),
                "SpecVersion": 1,
                "Spec": {
                    "Name": f"svc{i}",
                    "Labels": {},
                    "Mode": {"Replicated": {"Replicas": replicas}},
                    "TaskTemplate": template,
                },
            }
        )
    return made


def create(table: str, obj: Obj) -> Callable[[WriteTx], str]:
    return lambda tx: tx.create(table, obj)


def in_state(state: StoreState, task_state: str) -> int:
    """Counted from the store's index: polling must not decode 10,000 tasks."""
    with state.lock:
        return len(state.indexes["task"]["state"].get(task_state, ()))


def spread(state: StoreState, node_ids: list[str]) -> tuple[int, int]:
    with state.lock:
        by_node = state.indexes["task"]["node"]
        counts = [len(by_node.get(nid, ())) for nid in node_ids]
    return min(counts), max(counts)


async def seeded_store(nodes: list[Obj]) -> tuple[Store, CountingProposer]:
    state = StoreState()
    proposer = CountingProposer(MemoryProposer(state))
    store = Store(state, proposer)
    cluster = {"ID": new_id(), "Spec": default_swarm_spec(), "JoinTokens": {}}
    await store.update(create("cluster", cluster))
    for node in nodes:  # one registration, one write, as the dispatcher does
        await store.update(create("node", node))
    return store, proposer


async def reconciled(nodes: list[Obj], made: list[Obj], deadline: float) -> float:
    store, proposer = await seeded_store(nodes)
    runner = asyncio.create_task(Reconciler(store).run())
    await asyncio.sleep(0.2)  # its first pass (nothing to do) and its watch
    total = sum(s["Spec"]["Mode"]["Replicated"]["Replicas"] for s in made)
    proposals, actions = proposer.proposals, proposer.actions
    started = time.monotonic()
    try:
        for service in made:
            await store.update(create("service", service))
        while (assigned := in_state(store.state, "assigned")) < total:
            if runner.done():
                runner.result()  # show why the reconciler stopped
                raise RuntimeError("the reconciler stopped")
            if time.monotonic() - started > deadline:
                raise TimeoutError(f"{assigned}/{total} tasks assigned after {deadline:.0f}s")
            await asyncio.sleep(POLL_SECONDS)
        elapsed = time.monotonic() - started
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    low, high = spread(store.state, [n["ID"] for n in nodes])
    writes, written = proposer.proposals - proposals, proposer.actions - actions
    print(f"nodes {len(nodes)}  tasks {total}  services {len(made)}")
    print(
        f"placed and committed: {elapsed:.2f}s = {total / elapsed:.0f} tasks/s (target >= 2000/s)"
    )
    print(
        f"store writes: {writes} proposals, {written} actions "
        f"(the {len(made)} service creations included)"
    )
    print(f"tasks per node: min {low}  max {high}  (zone a nodes also run svc0)")
    return float(total / elapsed)


def planner_alone(nodes: list[Obj], made: list[Obj]) -> float:
    """plan_schedule on the same pending tasks, no store: the placement cost."""
    pending = []
    for service in made:
        for slot in range(1, service["Spec"]["Mode"]["Replicated"]["Replicas"] + 1):
            task = new_task(service, CreateTask(service["ID"], slot, ""))
            task["Status"] = {"State": "pending", "Message": "pending task scheduling"}
            pending.append(task)
    loads: dict[str, NodeLoad] = {}
    started = time.perf_counter()
    decisions = plan_schedule(pending, nodes, loads)
    elapsed = time.perf_counter() - started
    placed = sum(isinstance(d, Assign) for d in decisions)
    rate = placed / elapsed
    print(f"planner alone: {placed}/{len(pending)} placed in {elapsed:.2f}s = {rate:.0f} tasks/s")
    return rate


def measure(runs: int) -> list[dict[str, float]]:
    """The suite's entry: 1,000 simulated nodes, 10,000 tasks, in this process."""
    figures = []
    for _ in range(max(runs, 1)):
        nodes = [fake_agent(n) for n in range(1000)]
        made = services(10, 10000)
        committed = asyncio.run(reconciled(nodes, made, DEADLINE_SECONDS))
        figures.append(
            {"tasks_per_s": committed, "planner_tasks_per_s": planner_alone(nodes, made)}
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS)
    parser.add_argument("--no-planner", action="store_true", help="skip the planner-alone run")
    args = parser.parse_args()
    nodes = [fake_agent(n) for n in range(args.nodes)]
    made = services(args.services, args.tasks)
    asyncio.run(reconciled(nodes, made, args.deadline))
    if not args.no_planner:
        planner_alone(nodes, made)


if __name__ == "__main__":
    main()
