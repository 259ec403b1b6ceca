"""ONE conformance suite for the store, run against every backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from manager.store.state import NameConflict, ObjectExists, ObjectMissing, VersionConflict
from manager.store.store import Store, WriteTx
from tests.store.backends import etcd_cluster, memory_cluster, raft_cluster

Backend = Callable[[Path], AbstractAsyncContextManager[list[Store]]]
BACKENDS: dict[str, Backend] = {
    "memory": lambda _: memory_cluster(),
    "raft": raft_cluster,
    "etcd": etcd_cluster,
}


@pytest.fixture(params=sorted(BACKENDS))
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Store]]:
    async with BACKENDS[request.param](tmp_path) as replicas:
        yield replicas


def service(sid: str, name: str, replicas: int = 1) -> dict[str, Any]:
    return {"ID": sid, "Spec": {"Name": name, "Mode": {"Replicated": {"Replicas": replicas}}}}


def task(tid: str, service_id: str, node: str = "", state: str = "new") -> dict[str, Any]:
    return {"ID": tid, "ServiceID": service_id, "NodeID": node, "Slot": 1,
            "DesiredState": "running", "Status": {"State": state}}  # fmt: skip


async def converged(stores: list[Store], index: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(s.index < index for s in stores):
        assert time.monotonic() < deadline, [s.index for s in stores]
        await asyncio.sleep(0.01)


async def test_writes_get_increasing_versions_and_timestamps(stores: list[Store]) -> None:
    store = stores[-1]  # on Raft, a follower or the leader: both must work
    await store.update(lambda tx: tx.create("service", service("s1", "web")))
    first = store.view(lambda tx: tx.get("service", "s1"))
    assert first is not None and first["Version"]["Index"] > 0
    assert first["CreatedAt"] == first["UpdatedAt"] and first["CreatedAt"].endswith("Z")

    def scale(tx: WriteTx) -> None:
        obj = tx.get("service", "s1")
        assert obj is not None
        obj["Spec"]["Mode"]["Replicated"]["Replicas"] = 3
        tx.update("service", obj)

    await store.update(scale)
    second = store.view(lambda tx: tx.get("service", "s1"))
    assert second is not None
    assert second["Version"]["Index"] > first["Version"]["Index"]
    assert second["CreatedAt"] == first["CreatedAt"]
    assert second["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    await converged(stores, store.index)
    for replica in stores:
        assert replica.view(lambda tx: tx.get("service", "s1")) == second


async def test_a_stale_version_is_refused_and_changes_nothing(stores: list[Store]) -> None:
    store = stores[0]
    await store.update(lambda tx: tx.create("service", service("s1", "web")))
    stale = store.view(lambda tx: tx.get("service", "s1"))
    assert stale is not None
    fresh = dict(stale, Spec={"Name": "web", "Labels": {"v": "2"}})
    await store.update(lambda tx: tx.update("service", fresh))
    stale["Spec"]["Labels"] = {"v": "stale"}
    with pytest.raises(VersionConflict, match="update out of sequence"):
        await store.update(lambda tx: tx.update("service", stale))
    now = store.view(lambda tx: tx.get("service", "s1"))
    assert now is not None and now["Spec"]["Labels"] == {"v": "2"}


async def test_concurrent_updates_with_one_version_exactly_one_wins(stores: list[Store]) -> None:
    await stores[0].update(lambda tx: tx.create("service", service("s1", "web")))
    await converged(stores, stores[0].index)
    base = stores[0].view(lambda tx: tx.get("service", "s1"))
    assert base is not None

    async def attempt(store: Store, label: str) -> str:
        obj = dict(base, Spec={"Name": "web", "Labels": {"by": label}})
        try:
            await store.update(lambda tx: tx.update("service", obj))
        except VersionConflict:
            return "lost"
        return "won"

    outcomes = await asyncio.gather(*(attempt(stores[i % len(stores)], str(i)) for i in range(8)))
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


async def test_names_are_unique_and_ids_cannot_be_reused(stores: list[Store]) -> None:
    store = stores[0]
    await store.update(lambda tx: tx.create("service", service("s1", "web")))
    with pytest.raises(NameConflict, match="name conflicts with an existing object"):
        await store.update(lambda tx: tx.create("service", service("s2", "web")))
    with pytest.raises(ObjectExists):
        await store.update(lambda tx: tx.create("service", service("s1", "other")))
    with pytest.raises(ObjectMissing):
        await store.update(lambda tx: tx.delete("service", "nope"))
    await store.update(lambda tx: tx.delete("service", "s1"))
    await store.update(lambda tx: tx.create("service", service("s3", "web")))  # name is free
    assert store.view(lambda tx: tx.by_name("service", "web"))["ID"] == "s3"  # type: ignore[index]


async def test_a_batch_applies_whole_or_not_at_all(stores: list[Store]) -> None:
    store = stores[0]
    await store.update(lambda tx: tx.create("service", service("s1", "web")))

    def mixed(tx: WriteTx) -> None:
        tx.create("task", task("t1", "s1"))
        tx.create("service", service("s2", "web"))  # name conflict: all of it fails

    with pytest.raises(NameConflict):
        await store.update(mixed)
    assert store.view(lambda tx: tx.get("task", "t1")) is None


async def test_indexes_follow_updates_and_deletes(stores: list[Store]) -> None:
    store = stores[0]

    def seed(tx: WriteTx) -> None:
        tx.create("task", task("t1", "s1", "n1"))
        tx.create("task", task("t2", "s1", "n2"))
        tx.create("task", task("t3", "s2", "n1", state="running"))

    await store.update(seed)

    def ids(index: str, key: str) -> list[str]:
        return [t["ID"] for t in store.view(lambda tx: tx.find("task", index, key))]

    assert ids("service", "s1") == ["t1", "t2"]
    assert ids("node", "n1") == ["t1", "t3"]
    assert ids("state", "running") == ["t3"]

    def move(tx: WriteTx) -> None:
        t1 = tx.get("task", "t1")
        assert t1 is not None
        t1["NodeID"], t1["Status"] = "n2", {"State": "running"}
        tx.update("task", t1)
        tx.delete("task", "t3")

    await store.update(move)
    await converged(stores, store.index)
    for replica in stores:
        assert [t["ID"] for t in replica.view(lambda tx: tx.find("task", "node", "n1"))] == []
        assert [t["ID"] for t in replica.view(lambda tx: tx.find("task", "node", "n2"))] == [
            "t1", "t2"]  # fmt: skip
        assert [t["ID"] for t in replica.view(lambda tx: tx.find("task", "state", "running"))] == [
            "t1"]  # fmt: skip


async def test_watch_resumes_from_an_index_and_sees_every_later_change(
    stores: list[Store],
) -> None:
    store = stores[0]
    await store.update(lambda tx: tx.create("service", service("s1", "a")))
    mark = store.index
    await store.update(lambda tx: tx.create("service", service("s2", "b")))
    snapshot, changes = store.view_and_watch(lambda tx: len(tx.all("service")),
                                             frozenset({"service"}))  # fmt: skip
    assert snapshot == 2
    from_mark = store.watch(mark, frozenset({"service"}))
    await store.update(lambda tx: tx.create("task", task("t1", "s1")))  # other table
    await store.update(lambda tx: tx.delete("service", "s1"))
    async with asyncio.timeout(10):
        seen = [await anext(from_mark), await anext(from_mark)]
        live = await anext(changes)
    assert [(c.op, c.id) for c in seen] == [("create", "s2"), ("delete", "s1")]
    assert (live.op, live.id) == ("delete", "s1") and live.index == store.index
    await from_mark.aclose()
    await changes.aclose()


async def test_snapshot_and_restore_keep_objects_versions_and_indexes(
    stores: list[Store],
) -> None:
    from manager.store.state import StoreState

    store = stores[0]
    await store.update(lambda tx: tx.create("service", service("s1", "web")))
    await store.update(lambda tx: tx.create("task", task("t1", "s1", "n1")))
    copy = StoreState()
    copy.restore(store.state.snapshot())
    assert copy.index == store.index
    assert copy.get("service", "s1") == store.view(lambda tx: tx.get("service", "s1"))
    assert [t["ID"] for t in copy.find("task", "node", "n1")] == ["t1"]
    assert copy.by_name("service", "web") is not None
