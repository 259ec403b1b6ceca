"""The reconciler's allocation on a memory store: tasks on networks get
addresses before they become pending, wait when a subnet is full, and nodes
hold one address on the ingress network."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from manager.allocator.endpoint import allocate_endpoint
from manager.allocator.networks import ingress_network, network_object
from manager.reconciler import Reconciler
from manager.store.proposer import MemoryProposer
from manager.store.state import Action, BatchResult, StoreState, VersionConflict
from manager.store.store import Store, WriteTx
from tests.component.test_reconciler import node, service

INGRESS = "i" * 25
TINY = "t" * 25  # a /29: gateway .1 and five addresses, .2 to .6


class SlowProposer(MemoryProposer):
    """Batches apply a moment after they are built, as through Raft: two
    writers can build from one snapshot."""

    async def propose(self, actions: list[Action], timestamp: str) -> BatchResult:
        await asyncio.sleep(0.01)
        return await super().propose(actions, timestamp)


def seed(tx: WriteTx) -> None:
    tx.create("network", ingress_network(INGRESS, ["10.0.0.0/8"], 24))
    config = {"Subnet": "10.0.9.0/29", "Gateway": "10.0.9.1"}
    ipam = {"Driver": "default", "Options": None, "Config": [config]}
    options = {"com.docker.network.driver.overlay.vxlanid_list": "4097"}
    tx.create("network", network_object(TINY, "tiny", ipam, options))
    for nid in ("n1", "n2", "n3"):
        tx.create("node", node(nid))


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    state = StoreState()
    store = Store(state, MemoryProposer(state))
    await store.update(seed)
    runner = asyncio.create_task(Reconciler(store).run())
    yield store
    if runner.done():
        runner.result()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the reconciler did not converge"
        await asyncio.sleep(0.02)


def tasks_of(store: Store, sid: str) -> list[dict[str, Any]]:
    return store.view(lambda tx: tx.find("task", "service", sid))


def node_addresses(store: Store) -> dict[str, list[str]]:
    nodes = store.view(lambda tx: tx.all("node"))
    return {n["ID"]: [a for x in n.get("Attachments") or [] for a in x["Addresses"]] for n in nodes}


def tiny_addresses(tasks: list[dict[str, Any]]) -> list[str]:
    return [a for t in tasks for x in t.get("NetworksAttachments") or [] for a in x["Addresses"]]


async def test_tasks_wait_for_a_full_subnet_and_take_freed_addresses(store: Store) -> None:
    on_tiny = {"Networks": [{"Target": TINY}]}
    big = service("big", {"Replicated": {"Replicas": 3}}, **on_tiny)
    plain = service("plain", {"Replicated": {"Replicas": 2}})
    await store.update(lambda tx: [tx.create("service", s) for s in (big, plain)])
    await until(lambda: len([t for t in tasks_of(store, "big") if t.get("NodeID")]) == 3)
    assert sorted(tiny_addresses(tasks_of(store, "big"))) == [
        "10.0.9.2/29",
        "10.0.9.3/29",
        "10.0.9.4/29",
    ]
    await until(lambda: len([t for t in tasks_of(store, "plain") if t.get("NodeID")]) == 2)
    assert all("NetworksAttachments" not in t for t in tasks_of(store, "plain"))

    more = service("more", {"Replicated": {"Replicas": 3}}, **on_tiny)
    await store.update(lambda tx: tx.create("service", more))
    full = "network tiny: no available IPv4 addresses on subnet 10.0.9.0/29"
    await until(lambda: any(t["Status"].get("Err") == full for t in tasks_of(store, "more")))
    waiting = [t for t in tasks_of(store, "more") if t["Status"]["State"] == "new"]
    assert len(waiting) == 1 and "NetworksAttachments" not in waiting[0]

    # big scales down to one and two of its tasks end: their addresses go to
    # the waiting task (nothing replaces them).
    def end_two(tx: WriteTx) -> None:
        scaled = tx.get("service", "big")
        assert scaled is not None
        tx.update(
            "service", dict(scaled, Spec=dict(scaled["Spec"], Mode={"Replicated": {"Replicas": 1}}))
        )
        for task in sorted(tx.find("task", "service", "big"), key=lambda t: t["Slot"])[1:]:
            tx.update("task", dict(task, Status={"State": "shutdown"}, DesiredState="shutdown"))

    await store.update(end_two)
    await until(lambda: all(t.get("NodeID") for t in tasks_of(store, "more")))
    live = [
        t
        for sid in ("big", "more")
        for t in tasks_of(store, sid)
        if t["Status"]["State"] not in ("shutdown",)
    ]
    held = tiny_addresses(live)
    assert len(held) == len(set(held)) and "10.0.9.1/29" not in held


async def test_every_node_holds_one_ingress_address(store: Store) -> None:
    await until(lambda: all(node_addresses(store).values()))
    held = node_addresses(store)
    assert sorted(a for addresses in held.values() for a in addresses) == [
        "10.0.0.2/24",
        "10.0.0.3/24",
        "10.0.0.4/24",
    ]
    freed = held["n2"]
    await store.update(lambda tx: tx.delete("node", "n2"))
    down = dict(node("n4"), Status={"State": "down"})  # ready or not, it gets one
    await store.update(lambda tx: tx.create("node", down))
    await until(lambda: node_addresses(store).get("n4"))
    assert node_addresses(store)["n4"] == freed
    assert node_addresses(store)["n1"] == held["n1"]  # kept as they were


async def test_allocations_built_from_one_snapshot_conflict() -> None:
    """Both writers pick the same lowest address; rewriting the network at the
    version read lets only the first commit."""
    state = StoreState()
    store = Store(state, SlowProposer(state))
    await store.update(seed)

    def create(sid: str) -> Any:
        spec = {"Name": sid, "TaskTemplate": {"Networks": [{"Target": TINY}]}}

        def write(tx: WriteTx) -> None:
            endpoint = allocate_endpoint(tx, sid, spec, None)
            tx.create("service", {"ID": sid, "Spec": spec, "Endpoint": endpoint})

        return write

    results = await asyncio.gather(
        store.update(create("a")), store.update(create("b")), return_exceptions=True
    )
    assert results[0] is None and isinstance(results[1], VersionConflict)
    await store.update(create("b"))  # on fresh state it takes the next address
    vips = [
        s["Endpoint"]["VirtualIPs"][0]["Addr"] for s in store.view(lambda tx: tx.all("service"))
    ]
    assert sorted(vips) == ["10.0.9.2/29", "10.0.9.3/29"]
