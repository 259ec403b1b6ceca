"""The etcd backend. `<prefix>/obj/<table>/<id>` holds an object's JSON without
Version (its version IS the key's mod revision), `<prefix>/name/<table>/<name>`
its owner's id; every batch writes `<prefix>/head` too, so that key's mod revision
is the store's last write; the leader holds `<prefix>/leader` with a lease.

A batch is ONE transaction, planned on a snapshot (first the local mirror, which
costs nothing) by the in-memory state machine itself; its compares pin every key
the plan read. If one fails, the failure branch has read those keys: the plan on
that snapshot names the error, or succeeds and is tried again. The StoreState is
a mirror, fed by a watch that resumes from the revision after the last it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import msgspec

from manager.store import state as st
from manager.store.etcd_wire import CHANNEL_OPTIONS as _CHANNEL_OPTIONS
from manager.store.etcd_wire import decode_kv as _decode
from manager.store.etcd_wire import etcdrpc
from manager.store.etcd_wire import name_of as _name_of
from manager.store.etcd_wire import op as _op
from manager.store.etcd_wire import pin as _pin
from manager.store.etcd_wire import range_end as _range_end
from manager.store.proposer import NoLeader
from manager.store.tables import TABLES, Obj

WRITE_TIMEOUT_SECONDS = 2.0
LEASE_TTL_SECONDS = 2
KEEPALIVE_SECONDS = 0.5  # four keep-alives a TTL: one slow answer loses nothing
WATCH_RETRY_SECONDS = 0.2
NO_ETCD = "the store has no leader: etcd is not reachable"
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_DELETE = 1  # mvccpb.Event.DELETE

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (table, id) or (table, name)
Write = tuple[str, str, str, Obj | None]  # what StoreState.apply_external takes


@dataclass
class _Snapshot:  # what a batch is planned against
    objects: dict[Key, Obj | None]  # Version.Index is the key's mod revision
    names: dict[Key, str | None]  # (table, name) -> the owner's id
    head: int = -1  # the store's last write when read; -1: the mirror, which may lag


class EtcdProposer:
    def __init__(
        self,
        state: st.StoreState,
        endpoints: list[str],
        prefix: str = "/shoal",
        identity: str | None = None,
    ) -> None:
        self.state = state
        hosts = [e.split("://", 1)[-1].rstrip("/") for e in endpoints]
        # Several addresses (IPs): gRPC moves on to the next when one fails.
        self.target = hosts[0] if len(hosts) == 1 else "ipv4:" + ",".join(hosts)
        # What this manager writes into the leader key (managers use their address).
        self.id = identity or uuid.uuid4().hex
        self._holder: str | None = None
        self.leader_changed = asyncio.Event()
        self._prefix = (prefix.rstrip("/") + "/").encode()
        self._head, self._leader_key = self._prefix + b"head", self._prefix + b"leader"
        self._channel: Any = None
        self._kv: Any = None
        self._leases: Any = None
        self._loop: asyncio.AbstractEventLoop  # set by start()
        self._leading: asyncio.Task[None] | None = None
        self._leader = self._was_leader = False
        self._lease_id, self._lease_until = 0, 0.0
        self._next_revision = 0  # where the watch resumes (0: list everything again)
        self._stopping, self._watch_lock = threading.Event(), threading.Lock()
        self._watch_call: Any = None
        self._watcher: threading.Thread | None = None

    def _key(self, kind: str, table_name: str, rest: str) -> bytes:
        return self._prefix + f"{kind}/{table_name}/{rest}".encode()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._channel = grpc.insecure_channel(self.target, options=_CHANNEL_OPTIONS)
        self._kv, self._leases = etcdrpc.KVStub(self._channel), etcdrpc.LeaseStub(self._channel)
        try:
            revision, objects = await asyncio.to_thread(self._fetch)
        except grpc.RpcError as exc:  # stop() closes the channel
            raise NoLeader(f"{NO_ETCD} ({exc.code().name})") from None
        self._resync(revision, objects)
        self._next_revision = revision + 1
        self._stopping.clear()
        stub = etcdrpc.WatchStub(self._channel)
        self._watcher = threading.Thread(target=self._watch_forever, args=(stub,), daemon=True)
        self._watcher.start()
        self._leading = asyncio.create_task(self._lead_forever())

    async def stop(self) -> None:
        if self._leading is not None:
            self._leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leading
        if self._lease_id:  # hand leadership over now, not when the lease runs out
            with contextlib.suppress(grpc.RpcError):
                revoke = etcdrpc.LeaseRevokeRequest(ID=self._lease_id)
                await asyncio.to_thread(self._leases.LeaseRevoke, revoke, timeout=1.0)
        self._lease_id, self._leader = 0, False
        self._note_leadership()
        self._stopping.set()
        with self._watch_lock:
            if self._watch_call is not None:
                self._watch_call.cancel()
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.join, 5.0)
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def leader(self) -> str | None:
        """The identity in the leader key, as last seen."""
        return self.id if self.is_leader() else self._holder

    def is_leader(self) -> bool:
        # Only while the lease surely lives: when keep-alives stop getting
        # through, etcd drops it after the TTL and another manager takes over.
        return self._leader and time.monotonic() < self._lease_until

    async def propose(self, actions: list[st.Action], timestamp: str) -> st.BatchResult:
        if self._channel is None:
            raise NoLeader("the store is not running")
        deadline = time.monotonic() + WRITE_TIMEOUT_SECONDS
        try:
            revision = await self._commit(actions, timestamp, deadline)
        except st.StoreError as exc:
            return st.BatchResult(self.state.index, (exc.kind, str(exc)))
        # Read-your-writes. As on a Raft follower, a committed batch is never
        # reported as failed, even if the mirror is slow to show it.
        await self._applied(revision, deadline + WRITE_TIMEOUT_SECONDS)
        return st.BatchResult(revision)

    async def read_barrier(self, timeout: float = WRITE_TIMEOUT_SECONDS) -> None:
        # The head key, not the header's revision: that one also counts writes
        # outside the prefix (and the leader key's), which never reach the mirror.
        deadline = time.monotonic() + timeout
        found = await self._call(self._kv.Range, etcdrpc.RangeRequest(key=self._head), deadline)
        if not await self._applied(int(found.kvs[0].mod_revision) if found.kvs else 0, deadline):
            raise NoLeader("this manager could not catch up with etcd")

    async def _commit(self, actions: list[st.Action], timestamp: str, deadline: float) -> int:
        """Commit the batch and return its revision, or raise why it is refused."""
        objects = list(dict.fromkeys((a.table, a.id) for a in actions))
        named = dict.fromkeys((a.table, _name_of(a.table, a.object)) for a in actions)
        names = [(t, n) for t, n in named if n is not None]
        reads = [_op("get", self._head), *(_op("get", self._key("obj", *k)) for k in objects)]
        reads += [_op("get", self._key("name", *n)) for n in names]
        read_only = etcdrpc.TxnRequest(success=reads)
        with self.state.lock:
            objs = {k: self.state.get(*k) for k in objects}
            snapshot = _Snapshot(objs, {n: self.state.names[n[0]].get(n[1]) for n in names})
        while True:
            try:
                compares, writes = self._plan(actions, snapshot, timestamp)
            except st.StoreError:
                if snapshot.head < 0:  # the mirror may lag: only etcd refuses
                    read = await self._call(self._kv.Txn, read_only, deadline)
                    snapshot = self._parse(read, objects, names)
                    continue
                await self._applied(snapshot.head, deadline)  # so the caller's reread sees why
                raise
            writes.append(_op("put", self._head, b""))
            txn = etcdrpc.TxnRequest(compare=compares, success=writes, failure=reads)
            response = await self._call(self._kv.Txn, txn, deadline)
            if response.succeeded:
                return int(response.header.revision)
            snapshot = self._parse(response, objects, names)

    def _parse(self, response: Any, objects: list[Key], names: list[Key]) -> _Snapshot:
        found = [r.response_range.kvs for r in response.responses]
        head, objs, owners = found[0], found[1 : 1 + len(objects)], found[1 + len(objects) :]
        return _Snapshot(
            {k: _decode(v[0]) if v else None for k, v in zip(objects, objs, strict=True)},
            {n: v[0].value.decode() if v else None for n, v in zip(names, owners, strict=True)},
            int(head[0].mod_revision) if head else 0,
        )

    def _plan(
        self, actions: list[st.Action], snapshot: _Snapshot, timestamp: str
    ) -> tuple[list[Any], list[Any]]:
        """Apply the batch to a scratch StoreState that holds the snapshot: the
        in-memory store's own rules and errors. Then the compares that hold while
        etcd still matches the snapshot, and the writes that make it the result."""
        held = [(k, o) for k, o in snapshot.objects.items() if o is not None]
        trial = st.StoreState()
        trial.apply_external(0, [("create", t, oid, obj) for (t, oid), obj in held])
        owners: dict[Key, str | None] = {
            (t, n): oid for (t, oid), obj in held if (n := _name_of(t, obj)) is not None
        }
        owners.update(snapshot.names)  # the names the batch claims, and their holders
        for (t, name), owner in snapshot.names.items():
            if owner is not None:  # perhaps an object outside the snapshot
                trial.names[t][name] = owner
        trial.apply(st.encode_entry(timestamp, [actions]))[0].raise_error()

        compares = [_pin(self._key("obj", *k), int(o["Version"]["Index"])) for k, o in held]
        compares += [_pin(self._key("obj", *k)) for k, o in snapshot.objects.items() if o is None]
        compares += [_pin(self._key("name", *n), owner=o) for n, o in snapshot.names.items()]
        writes = []  # etcd refuses a transaction that writes a key twice: final values only
        for (t, oid), obj in snapshot.objects.items():
            if (new := trial.get(t, oid)) is not None:
                del new["Version"]  # etcd's mod revision is the version
                writes.append(_op("put", self._key("obj", t, oid), msgspec.json.encode(new)))
            elif obj is not None:
                writes.append(_op("delete", self._key("obj", t, oid)))
        for (t, name), owner in owners.items():
            if (now := trial.names[t].get(name)) != owner:
                key = self._key("name", t, name)
                writes.append(_op("put", key, now.encode()) if now else _op("delete", key))
        return compares, writes

    async def _call(self, method: Any, request: Any, deadline: float) -> Any:
        """One etcd call in a thread; NoLeader if etcd does not answer by `deadline`."""
        try:
            return await asyncio.to_thread(method, request, timeout=deadline - time.monotonic())
        except grpc.RpcError as exc:
            if exc.code() in _UNREACHABLE:
                raise NoLeader(f"{NO_ETCD} ({exc.code().name})") from None
            raise st.StoreError(f"etcd refused the request: {exc.details()}") from None

    async def _applied(self, revision: int, deadline: float) -> bool:
        """Wait until the mirror reached `revision`; False if not by `deadline`."""
        while self.state.index < revision:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.002)
        return True

    def _fetch(self) -> tuple[int, dict[Key, Obj]]:
        start = self._prefix + b"obj/"
        request = etcdrpc.RangeRequest(key=start, range_end=_range_end(start))
        found = self._kv.Range(request, timeout=10.0)
        objects: dict[Key, Obj] = {}
        for kv in found.kvs:
            table_name, _, oid = bytes(kv.key)[len(start) :].decode().partition("/")
            if table_name in TABLES:
                objects[(table_name, oid)] = _decode(kv)
        return int(found.header.revision), objects

    def _resync(self, revision: int, objects: dict[Key, Obj]) -> None:
        """Make the mirror hold `objects` (read at `revision`), as changes."""
        with self.state.lock:
            writes: list[Write] = []
            for t, held in self.state.objects.items():
                writes += [("delete", t, oid, None) for oid in held if (t, oid) not in objects]
            for (t, oid), obj in objects.items():
                old = self.state.get(t, oid)
                if old is None or old["Version"] != obj["Version"]:
                    writes.append(("create" if old is None else "update", t, oid, obj))
            self.state.apply_external(revision, writes)

    def _watch_forever(self, stub: Any) -> None:
        """The watch thread. After a broken stream it resumes from the revision
        after the last one it saw; after a compaction it lists everything again."""
        while not self._stopping.is_set():
            try:
                if self._next_revision == 0:
                    revision, objects = self._fetch()
                    self._loop.call_soon_threadsafe(self._resync, revision, objects)
                    self._next_revision = revision + 1
                self._watch_once(stub)
            except Exception as exc:
                if self._stopping.is_set():
                    return
                if not isinstance(exc, grpc.RpcError):
                    log.exception("the etcd watch failed; it starts again")
            self._stopping.wait(WATCH_RETRY_SECONDS)

    def _watch_once(self, stub: Any) -> None:
        ended = threading.Event()
        create = etcdrpc.WatchCreateRequest(
            key=self._prefix, range_end=_range_end(self._prefix), start_revision=self._next_revision
        )

        def requests() -> Iterator[Any]:
            yield etcdrpc.WatchRequest(create_request=create)
            ended.wait()  # keep our side open: closing it ends the watch

        with self._watch_lock:
            if self._stopping.is_set():
                return
            self._watch_call = call = stub.Watch(requests())
        try:
            for response in call:
                if response.canceled or response.compact_revision:
                    self._next_revision = 0 if response.compact_revision else self._next_revision
                    return
                if response.events:
                    revisions = self._parse_events(response.events)
                    self._loop.call_soon_threadsafe(self._mirror, revisions)
                    self._next_revision = int(response.events[-1].kv.mod_revision) + 1
        finally:
            ended.set()

    def _parse_events(self, events: Any) -> dict[int, list[Write]]:
        """Each store batch's writes by revision (etcd sends a revision's events
        together): a batch applies whole; leader-key revisions are no batch."""
        revisions: dict[int, list[Write]] = {}
        for event in events:
            kv, deleted = event.kv, event.type == _DELETE
            kind, _, rest = bytes(kv.key)[len(self._prefix) :].decode().partition("/")
            table_name, _, oid = rest.partition("/")
            if kind == "head":
                revisions.setdefault(int(kv.mod_revision), [])
            elif kind == "obj" and table_name in TABLES:
                op = "delete" if deleted else "create" if kv.version == 1 else "update"
                write = (op, table_name, oid, None if deleted else _decode(kv))
                revisions.setdefault(int(kv.mod_revision), []).append(write)
        return revisions

    def _mirror(self, revisions: dict[int, list[Write]]) -> None:
        for revision, writes in revisions.items():
            self.state.apply_external(revision, writes)

    async def _lead_forever(self) -> None:
        """Keep a lease alive and campaign with it (the leader key goes with it)."""
        while True:
            sent = time.monotonic()
            try:
                if self._lease_id == 0:
                    grant = etcdrpc.LeaseGrantRequest(TTL=LEASE_TTL_SECONDS)
                    granted = await self._call(self._leases.LeaseGrant, grant, sent + 1.0)
                    self._lease_id, ttl = int(granted.ID), int(granted.TTL)
                else:
                    ttl = await asyncio.to_thread(self._keepalive, self._lease_id)
                if ttl <= 0:  # expired, and the leader key with it
                    self._lease_id, self._leader = 0, False
                else:
                    self._lease_until = sent + ttl
                    await self._campaign()
            except (NoLeader, st.StoreError, grpc.RpcError):
                pass  # is_leader() turns false by itself once the lease may be gone
            self._note_leadership()
            await asyncio.sleep(KEEPALIVE_SECONDS)

    def _keepalive(self, lease_id: int) -> int:
        request = etcdrpc.LeaseKeepAliveRequest(ID=lease_id)
        for answer in self._leases.LeaseKeepAlive(iter([request]), timeout=1.0):
            return int(answer.TTL)
        return 0

    async def _campaign(self) -> None:
        """Take the leader key if it is free; either way, learn who holds it."""
        me, key = self.id.encode(), self._leader_key
        free = etcdrpc.Compare(key=key, target=etcdrpc.Compare.CREATE, create_revision=0)
        take = _op("put", key, me, self._lease_id)
        txn = etcdrpc.TxnRequest(compare=[free], success=[take], failure=[_op("get", key)])
        answer = await self._call(self._kv.Txn, txn, time.monotonic() + 1.0)
        held = answer.succeeded
        self._holder = self.id if held else None
        if not held and (kvs := answer.responses[0].response_range.kvs):
            held = kvs[0].value == me and kvs[0].lease == self._lease_id
            self._holder = kvs[0].value.decode()
        self._leader = bool(held)

    def _note_leadership(self) -> None:
        if self.is_leader() != self._was_leader:
            self._was_leader = not self._was_leader
            self.leader_changed.set()
