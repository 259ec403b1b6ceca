"""The leader's convergence loop on a memory store: services become tasks
placed on nodes, and stay whole as tasks end and specs change."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from manager.reconciler import Reconciler
from manager.store.proposer import MemoryProposer
from manager.store.state import StoreState
from manager.store.store import Store, WriteTx


def node(nid: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "ID": nid,
        "Spec": {"Role": "worker", "Availability": "active", "Labels": labels or {}},
        "Description": {
            "Hostname": nid,
            "Resources": {"NanoCPUs": 4_000_000_000, "MemoryBytes": 8 << 30},
        },
        "Status": {"State": "ready"},
    }


def service(sid: str, mode: dict[str, Any], **template: Any) -> dict[str, Any]:
    return {
        "ID": sid,
        "SpecVersion": 1,
        "Spec": {
            "Name": sid,
            "Mode": mode,
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}, **template},
        },
    }


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    state = StoreState()
    store = Store(state, MemoryProposer(state))

    def nodes(tx: WriteTx) -> None:
        for nid in ("n1", "n2", "n3"):
            tx.create("node", node(nid, {"zone": "a" if nid != "n3" else "b"}))

    await store.update(nodes)
    runner = asyncio.create_task(Reconciler(store).run())
    yield store
    if runner.done():
        runner.result()  # the reconciler must never stop on its own: show why it did
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


def live_tasks(store: Store, sid: str) -> list[dict[str, Any]]:
    return [
        t
        for t in store.view(lambda tx: tx.find("task", "service", sid))
        if t["DesiredState"] == "running"
    ]


async def until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the reconciler did not converge"
        await asyncio.sleep(0.02)


def placement(store: Store, sid: str) -> Counter[str]:
    return Counter(
        t["NodeID"] for t in live_tasks(store, sid) if t["Status"]["State"] == "assigned"
    )


async def test_replicas_spread_evenly_and_follow_scaling(store: Store) -> None:
    await store.update(
        lambda tx: tx.create("service", service("web", {"Replicated": {"Replicas": 6}}))
    )
    await until(lambda: placement(store, "web") == Counter({"n1": 2, "n2": 2, "n3": 2}))
    tasks = live_tasks(store, "web")
    assert sorted(t["Slot"] for t in tasks) == [1, 2, 3, 4, 5, 6]
    assert all(t["Status"]["Message"] == "scheduler assigned task to node" for t in tasks)

    def scale(replicas: int) -> Any:
        def change(tx: WriteTx) -> None:
            svc = tx.get("service", "web")
            assert svc is not None
            svc["Spec"]["Mode"] = {"Replicated": {"Replicas": replicas}}
            tx.update("service", svc)

        return change

    await store.update(scale(9))
    await until(lambda: placement(store, "web") == Counter({"n1": 3, "n2": 3, "n3": 3}))
    await store.update(scale(3))
    await until(lambda: sorted(t["Slot"] for t in live_tasks(store, "web")) == [1, 2, 3])
    removed = [
        t
        for t in store.view(lambda tx: tx.find("task", "service", "web"))
        if t["DesiredState"] == "remove"
    ]
    assert sorted(t["Slot"] for t in removed) == [4, 5, 6, 7, 8, 9]


async def test_a_failed_task_is_replaced_in_its_slot(store: Store) -> None:
    await store.update(
        lambda tx: tx.create("service", service("api", {"Replicated": {"Replicas": 2}}))
    )
    await until(lambda: len(placement(store, "api")) == 2)
    victim = live_tasks(store, "api")[0]

    def fail(tx: WriteTx) -> None:
        task = tx.get("task", victim["ID"])
        assert task is not None
        task["Status"] = {"State": "failed", "Err": "task: non-zero exit (1)"}
        tx.update("task", task)

    await store.update(fail)
    await until(
        lambda: any(
            t["Slot"] == victim["Slot"] and t["ID"] != victim["ID"]
            for t in live_tasks(store, "api")
        )
    )
    old = store.view(lambda tx: tx.get("task", victim["ID"]))
    assert old is not None and old["DesiredState"] == "shutdown"


async def test_global_services_and_constraints(store: Store) -> None:
    await store.update(lambda tx: tx.create("service", service("agent", {"Global": {}})))
    await until(lambda: placement(store, "agent") == Counter({"n1": 1, "n2": 1, "n3": 1}))
    await store.update(lambda tx: tx.create("node", node("n4")))
    await until(lambda: placement(store, "agent")["n4"] == 1)

    pinned = service(
        "pinned",
        {"Replicated": {"Replicas": 2}},
        Placement={"Constraints": ["node.labels.zone==b"]},
    )
    await store.update(lambda tx: tx.create("service", pinned))
    await until(lambda: placement(store, "pinned") == Counter({"n3": 2}))

    impossible = service(
        "nowhere",
        {"Replicated": {"Replicas": 1}},
        Placement={"Constraints": ["node.labels.zone==c"]},
    )
    await store.update(lambda tx: tx.create("service", impossible))
    await until(lambda: any("Err" in t["Status"] for t in live_tasks(store, "nowhere")))
    task = live_tasks(store, "nowhere")[0]
    assert task["Status"]["State"] == "pending"
    assert task["Status"]["Err"] == (
        "no suitable node (scheduling constraints not satisfied on 4 nodes)"
    )
    await store.update(lambda tx: tx.create("node", node("n5", {"zone": "c"})))
    await until(lambda: placement(store, "nowhere") == Counter({"n5": 1}))


async def test_removing_a_service_removes_its_tasks(store: Store) -> None:
    await store.update(
        lambda tx: tx.create("service", service("gone", {"Replicated": {"Replicas": 2}}))
    )
    await until(lambda: len(live_tasks(store, "gone")) == 2)
    await store.update(lambda tx: tx.delete("service", "gone"))
    await until(lambda: live_tasks(store, "gone") == [])


async def test_draining_a_node_moves_its_tasks_and_pause_keeps_them(store: Store) -> None:
    await store.update(
        lambda tx: tx.create("service", service("mover", {"Replicated": {"Replicas": 3}}))
    )
    await until(lambda: placement(store, "mover") == Counter({"n1": 1, "n2": 1, "n3": 1}))

    def availability(node_id: str, value: str) -> Any:
        def change(tx: WriteTx) -> None:
            node = tx.get("node", node_id)
            assert node is not None
            node["Spec"]["Availability"] = value
            tx.update("node", node)

        return change

    await store.update(availability("n2", "pause"))
    await store.update(availability("n1", "drain"))
    # n1's task moves, and only to n3: the paused n2 takes nothing new but keeps its own.
    await until(lambda: placement(store, "mover") == Counter({"n2": 1, "n3": 2}))
