"""What only the etcd backend has: its keys, a restart that catches up and
watches on from a revision, etcd going away and coming back, leadership
through a lease, and a watch that fell behind a compaction."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from api.base import now_time as now_rfc3339
from manager.store.etcd import EtcdProposer
from manager.store.proposer import MemoryProposer, NoLeader
from manager.store.state import Action, BatchResult, StoreState
from manager.store.store import Store, WriteTx
from tests.store.backends import EtcdServer, etcd_server, wait_for_one_leader


def service(sid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"ID": sid, "Spec": {"Name": name, **extra}}


def raw_client(server: EtcdServer) -> Any:
    import etcd3  # here, not above: manager.store.etcd imports it without the protoc warnings

    host, port = server.url.removeprefix("http://").split(":")
    return etcd3.client(host, int(port), timeout=5)


@asynccontextmanager
async def managers(server: EtcdServer, prefix: str, count: int) -> AsyncIterator[list[Store]]:
    async with AsyncExitStack() as stack:
        stores = []
        for _ in range(count):
            proposer = EtcdProposer(StoreState(), [server.url], prefix)
            await proposer.start()
            stack.push_async_callback(proposer.stop)
            stores.append(Store(proposer.state, proposer))
        yield stores


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def reachable(store: Store, timeout: float = 10) -> None:
    """Once etcd is back, the manager's connection comes back within a second."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await store.proposer.read_barrier()
        except NoLeader:
            assert time.monotonic() < deadline, "etcd did not come back"
            await asyncio.sleep(0.1)


def services(store: Store) -> dict[str, Any]:
    return {s["ID"]: s for s in store.view(lambda tx: tx.all("service"))}


async def test_keys_hold_json_without_version_and_names_hold_ids(tmp_path: Path) -> None:
    prefix = "/shoal-keys"
    async with etcd_server(tmp_path) as server, managers(server, prefix, 1) as (store,):
        await store.update(lambda tx: tx.create("service", service("s1", "web")))

        def rename(tx: WriteTx) -> None:
            obj = tx.get("service", "s1")
            assert obj is not None
            obj["Spec"]["Name"] = "api"
            tx.update("service", obj)

        await store.update(rename)
        client = raw_client(server)
        value, meta = client.get(f"{prefix}/obj/service/s1")
        stored, mirrored = json.loads(value), store.view(lambda tx: tx.get("service", "s1"))
        assert "Version" not in stored and mirrored is not None
        assert mirrored["Version"]["Index"] == meta.mod_revision == store.index
        assert mirrored == dict(stored, Version={"Index": meta.mod_revision})
        assert mirrored["CreatedAt"] < mirrored["UpdatedAt"]
        assert client.get(f"{prefix}/name/service/api")[0] == b"s1"
        assert client.get(f"{prefix}/name/service/web")[0] is None  # freed by the rename
        client.close()


async def test_tricky_batches_end_as_in_the_in_memory_store(tmp_path: Path) -> None:
    """The same batches, one by one, on the in-memory store and on etcd: the
    same outcomes (errors and their messages) and the same objects."""
    s1, s2 = service("s1", "web"), service("s2", "db")
    batches = [
        [Action("create", "service", "s1", s1), Action("update", "service", "s1", dict(s1, L=1))],
        [Action("create", "service", "s2", s2), Action("delete", "service", "s2")],
        [Action("create", "service", "s2", service("s2", "web"))],  # name taken
        # A rename does not free its old name within the same batch.
        [Action("update", "service", "s1", service("s1", "api")),
         Action("create", "service", "s3", service("s3", "web"))],
        [Action("update", "service", "s1", service("s1", "api"))],
        [Action("create", "service", "s3", service("s3", "web"))],  # now it is free
        [Action("delete", "service", "nope"), Action("create", "service", "s1", s1)],
        [Action("create", "service", "s4", service("s4", "x")),
         Action("create", "service", "s1", s1)],
        [Action("update", "service", "s3", service("s3", "web"), expect=1)],
        [Action("delete", "service", "s3"), Action("create", "service", "s3", service("s3", "z"))],
        [Action("replace", "service", "s3", service("s3", "z"))],
    ]  # fmt: skip
    memory = StoreState()
    async with etcd_server(tmp_path) as server, managers(server, "/shoal-batches", 1) as (store,):
        for batch in batches:
            stamp = now_rfc3339()
            expected = await MemoryProposer(memory).propose(batch, stamp)
            got: BatchResult = await store.proposer.propose(batch, stamp)
            assert got.error == expected.error, batch
            for sid in ("s1", "s2", "s3", "s4"):
                mine, theirs = store.state.get("service", sid), memory.get("service", sid)
                for obj in (mine, theirs):
                    if obj is not None:
                        del obj["Version"]  # etcd's revisions are not the memory store's
                assert mine == theirs, (batch, sid)
            for name in ("web", "db", "api", "x", "z"):
                assert store.state.names["service"].get(name) == memory.names["service"].get(name)


async def test_a_restarted_manager_catches_up_and_its_watch_resumes(tmp_path: Path) -> None:
    prefix = f"/shoal-{uuid.uuid4().hex[:6]}"
    async with etcd_server(tmp_path) as server, managers(server, prefix, 1) as (writer,):
        async with managers(server, prefix, 1) as (before,):
            await writer.update(lambda tx: tx.create("service", service("s1", "a")))
            await writer.update(lambda tx: tx.create("service", service("s2", "b")))
            await until(lambda: len(services(before)) == 2)
        # While that manager is down: an update, a delete, a create.
        await writer.update(lambda tx: tx.update("service", dict(services(writer)["s1"], L=1)))
        await writer.update(lambda tx: tx.delete("service", "s2"))
        await writer.update(lambda tx: tx.create("service", service("s3", "c")))

        async with managers(server, prefix, 1) as (after,):
            assert services(after) == services(writer)  # the same objects and versions
            assert after.view(lambda tx: tx.by_name("service", "b")) is None
            changes = after.watch(after.index, frozenset({"service"}))
            await writer.update(lambda tx: tx.create("service", service("s4", "d")))
            async with asyncio.timeout(10):
                change = await anext(changes)
            assert (change.op, change.id, change.index) == ("create", "s4", writer.index)

            # etcd goes away: writes fail fast, with NoLeader.
            await server.kill()
            started = time.monotonic()
            with pytest.raises(NoLeader):
                await writer.update(lambda tx: tx.create("service", service("s5", "e")))
            assert time.monotonic() - started < 2.5
            with pytest.raises(NoLeader):
                await after.proposer.read_barrier()

            # It comes back (same data, same ports): the watch resumes after s4.
            await server.start()
            await reachable(writer)
            await writer.update(lambda tx: tx.create("service", service("s6", "f")))
            async with asyncio.timeout(10):
                change = await anext(changes)
            assert (change.op, change.id, change.index) == ("create", "s6", writer.index)
            await after.proposer.read_barrier()
            assert services(after) == services(writer)
            await changes.aclose()


async def test_one_leader_and_a_stopping_leader_hands_over(tmp_path: Path) -> None:
    async with etcd_server(tmp_path) as server:
        proposers = [EtcdProposer(StoreState(), [server.url], "/shoal-lead") for _ in range(3)]
        try:
            for proposer in proposers:
                await proposer.start()
            await wait_for_one_leader(proposers)
            leader = next(p for p in proposers if p.is_leader())
            others = [p for p in proposers if p is not leader]
            for proposer in proposers:
                proposer.leader_changed.clear()
            await leader.stop()
            assert not leader.is_leader() and leader.leader_changed.is_set()
            started = time.monotonic()
            await wait_for_one_leader(others, timeout=5)
            assert time.monotonic() - started < 2  # the lease was revoked, not left to run out
            successor = next(p for p in others if p.is_leader())
            assert successor.leader_changed.is_set()
        finally:
            for proposer in proposers:
                await proposer.stop()


async def test_a_watch_behind_a_compaction_lists_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = "/shoal-compact"
    async with etcd_server(tmp_path) as server, managers(server, prefix, 1) as (writer,):
        await writer.update(lambda tx: tx.create("service", service("s1", "a")))
        stale = writer.index, {("service", "s1"): services(writer)["s1"]}
        await writer.update(lambda tx: tx.delete("service", "s1"))
        await writer.update(lambda tx: tx.create("service", service("s2", "b")))
        client = raw_client(server)
        client.compact(writer.index)
        client.close()

        # A manager whose first list is that old: its watch starts behind the
        # compaction, and must list everything again.
        late = EtcdProposer(StoreState(), [server.url], prefix)
        real_fetch = late._fetch
        monkeypatch.setattr(late, "_fetch", lambda: stale)
        await late.start()
        monkeypatch.setattr(late, "_fetch", real_fetch)
        try:
            store = Store(late.state, late)
            assert set(services(store)) == {"s1"}
            changes = store.watch(store.index, frozenset({"service"}))
            async with asyncio.timeout(10):
                seen = {(c.op, c.id) for c in [await anext(changes), await anext(changes)]}
            assert seen == {("delete", "s1"), ("create", "s2")}
            assert services(store) == services(writer)
            await changes.aclose()
        finally:
            await late.stop()
