"""Rolling updates and rollbacks through the leader's convergence loop, on a
memory store, with simulated agents reporting through the dispatcher's write
path (which records when a task first ran)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.base import parse_time
from manager.reconciler import Reconciler
from manager.store.proposer import MemoryProposer
from manager.store.state import StoreState
from manager.store.store import Store, WriteTx
from tests.component.simulated_agents import node, simulated_agents

Obj = dict[str, Any]
MS = 1_000_000  # nanoseconds


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    state = StoreState()
    store = Store(state, MemoryProposer(state))
    await store.update(lambda tx: [tx.create("node", node(n)) for n in ("n1", "n2", "n3")])
    loops = [
        asyncio.create_task(Reconciler(store).run()),
        asyncio.create_task(simulated_agents(store)),
    ]
    yield store
    for loop in loops:
        if loop.done():
            loop.result()  # show why a loop stopped on its own
        loop.cancel()
    _, pending = await asyncio.wait(loops, timeout=5)
    assert not pending, f"loops that ignored their cancellation: {pending}"


def service(image: str, update: Obj, replicas: int = 6) -> Obj:
    return {
        "ID": "web",
        "SpecVersion": 1,
        "Spec": {
            "Name": "web",
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": image},
                "RestartPolicy": {"Condition": "any", "Delay": 200 * MS},
            },
            "UpdateConfig": {"Monitor": 300 * MS, **update},
            "RollbackConfig": {"Parallelism": 0, "Monitor": 100 * MS},
        },
    }


def tasks(store: Store) -> list[Obj]:
    return store.view(lambda tx: tx.find("task", "service", "web"))


def running_images(store: Store) -> list[str]:
    return sorted(
        t["Spec"]["ContainerSpec"]["Image"]
        for t in tasks(store)
        if t["Status"]["State"] == "running" and t["DesiredState"] == "running"
    )


def update_status(store: Store) -> Obj:
    svc = store.view(lambda tx: tx.get("service", "web")) or {}
    return svc.get("UpdateStatus") or {}


async def until(predicate: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def update_image(store: Store, image: str) -> None:
    """What the API's update does to the spec (swarm's PreviousSpec)."""

    def change(tx: WriteTx) -> None:
        svc = tx.get("service", "web")
        assert svc is not None
        svc["PreviousSpec"] = svc["Spec"]
        svc["Spec"] = dict(svc["Spec"], TaskTemplate=dict(svc["Spec"]["TaskTemplate"]))
        svc["Spec"]["TaskTemplate"]["ContainerSpec"] = {"Image": image}
        svc.pop("UpdateStatus", None)
        tx.update("service", svc)

    await store.update(change)


async def test_an_update_replaces_tasks_in_paced_batches(store: Store) -> None:
    update = {"Parallelism": 2, "Delay": 400 * MS, "Order": "stop-first"}
    await store.update(lambda tx: tx.create("service", service("web:1", update)))
    await until(lambda: running_images(store) == ["web:1"] * 6, "the service did not converge")
    await update_image(store, "web:2")
    await until(lambda: update_status(store).get("State") == "completed", "no completion", 30)
    assert update_status(store)["Message"] == "update completed"
    assert running_images(store) == ["web:2"] * 6
    created = sorted(
        parse_time(t["CreatedAt"]) / 1e9
        for t in tasks(store)
        if t["Spec"]["ContainerSpec"]["Image"] == "web:2"
    )
    assert len(created) == 6
    gaps = [b - a for a, b in itertools.pairwise(created)]
    # Three batches of two: the batch gaps are at least the delay, within a batch none.
    assert [g >= 0.4 for g in gaps] == [False, True, False, True, False], gaps


async def test_start_first_never_drops_below_the_replica_count(store: Store) -> None:
    update = {"Parallelism": 2, "Order": "start-first"}
    await store.update(lambda tx: tx.create("service", service("web:1", update)))
    await until(lambda: running_images(store) == ["web:1"] * 6, "the service did not converge")
    await update_image(store, "web:2")
    lowest = 6
    while update_status(store).get("State") != "completed":
        lowest = min(lowest, len(running_images(store)))
        await asyncio.sleep(0.01)
    assert lowest >= 6 and running_images(store) == ["web:2"] * 6


async def test_a_failing_update_pauses_with_the_reason(store: Store) -> None:
    await store.update(lambda tx: tx.create("service", service("web:1", {"Parallelism": 2})))
    await until(lambda: running_images(store) == ["web:1"] * 6, "the service did not converge")
    await update_image(store, "bad")
    await until(lambda: update_status(store).get("State") == "paused", "the update went on")
    message = update_status(store)["Message"]
    assert message.startswith("update paused due to failure or early termination of task ")
    old_left = running_images(store).count("web:1")
    await asyncio.sleep(1.0)  # paused: the slots not yet replaced stay on the old image
    assert running_images(store).count("web:1") == old_left >= 2


async def test_failure_action_rollback_returns_to_the_old_spec(store: Store) -> None:
    update = {"Parallelism": 2, "FailureAction": "rollback"}
    await store.update(lambda tx: tx.create("service", service("web:1", update)))
    await until(lambda: running_images(store) == ["web:1"] * 6, "the service did not converge")
    await update_image(store, "bad")
    await until(
        lambda: update_status(store).get("State") == "rollback_completed", "no rollback", 30
    )
    assert update_status(store)["Message"] == "rollback completed"
    await until(lambda: running_images(store) == ["web:1"] * 6, "the old tasks are not back")
    svc = store.view(lambda tx: tx.get("service", "web")) or {}
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "web:1"
    assert "PreviousSpec" not in svc
