"""The etcd backend: the same store over an external etcd.

Keys: `<prefix>/obj/<table>/<id>` holds an object's JSON without Version (the
version IS the key's mod revision); `<prefix>/name/<table>/<name>` holds the
owner's id; every batch also writes `<prefix>/head`, so its mod revision is the
store's last write; `<prefix>/leader` is held with a lease by the leader.

A batch is ONE transaction, planned with StoreState._check's rules against a
snapshot (first the local mirror, which costs nothing); its compares pin every
key the plan read. If one fails, the failure branch has read those keys in the
same transaction: the rules on that snapshot name the error (the in-memory
store's kinds and messages), or the batch is planned again.

The local StoreState is a mirror: loaded, then fed by a watch that resumes from
the revision after the last one it saw. grpc calls block: they run in threads,
and the watch thread hops into the loop with call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import msgspec
from etcd3 import etcdrpc

from manager.store import state as st
from manager.store.proposer import NoLeader
from manager.store.tables import TABLES, Obj, table

WRITE_TIMEOUT_SECONDS = 2.0
LEASE_TTL_SECONDS = 2
KEEPALIVE_SECONDS = 0.5  # four keep-alives a TTL: one slow answer loses nothing
WATCH_RETRY_SECONDS = 0.2
FETCH_TIMEOUT_SECONDS = 10.0
NO_ETCD = "the store has no leader: etcd is not reachable"
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_DELETE = 1  # mvccpb.Event.DELETE
_CHANNEL_OPTIONS = [
    # Reconnect within a second of etcd's return, not after gRPC's 2-minute backoff.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),  # notice a dead connection under a quiet watch
    ("grpc.max_receive_message_length", -1),  # the first load is one range, however big
]

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (table, id) or (table, name)
Write = tuple[str, str, str, Obj | None]  # what StoreState.apply_external takes


@dataclass
class _Snapshot:  # what a batch is planned against
    objects: dict[Key, Obj | None]  # Version.Index is the key's mod revision
    names: dict[Key, str | None]  # (table, name) -> the owner's id
    head: int = 0  # the store's last write when read
    from_etcd: bool = False  # False: the local mirror, which may lag


@dataclass
class _Revision:  # the events of one etcd revision under the prefix
    revision: int
    writes: list[Write] = field(default_factory=list)
    batch: bool = False  # a store batch (it wrote the head key)
    leader: str | None = None  # the leader key's new holder, "" if deleted


def _range_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _decode(kv: Any) -> Obj:
    obj: Obj = msgspec.json.decode(bytes(kv.value))
    obj["Version"] = {"Index": int(kv.mod_revision)}
    return obj


def _name_of(table_name: str, obj: Obj | None) -> str | None:
    name_of = table(table_name).name_of
    return None if name_of is None or obj is None else name_of(obj)


def _pin(key: bytes, mod_revision: int | None = None, owner: str | None = None) -> Any:
    """Compare: the key is still at `mod_revision`, or still holds `owner`, or
    (neither given) is still absent."""
    if owner is not None:
        return etcdrpc.Compare(key=key, target=etcdrpc.Compare.VALUE, value=owner.encode())
    if mod_revision is not None:
        return etcdrpc.Compare(key=key, target=etcdrpc.Compare.MOD, mod_revision=mod_revision)
    return etcdrpc.Compare(key=key, target=etcdrpc.Compare.VERSION, version=0)


def _put(key: bytes, value: bytes, lease: int = 0) -> Any:
    return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=value, lease=lease))


def _delete(key: bytes) -> Any:
    return etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=key))


def _get(key: bytes) -> Any:
    return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key))


class EtcdProposer:
    def __init__(self, state: st.StoreState, endpoints: list[str], prefix: str = "/shoal") -> None:
        self.state = state
        hosts = [e.split("://", 1)[-1].rstrip("/") for e in endpoints]
        # Several addresses: gRPC moves on to the next when one fails (IPs only).
        self.target = hosts[0] if len(hosts) == 1 else "ipv4:" + ",".join(hosts)
        self.id = uuid.uuid4().hex  # what this manager writes into the leader key
        self.leader_changed = asyncio.Event()
        self._prefix = (prefix.rstrip("/") + "/").encode()
        self._head, self._leader_key = self._prefix + b"head", self._prefix + b"leader"
        self._channel: Any = None
        self._kv: Any = None
        self._leases: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress = asyncio.Event()  # set, and replaced, whenever the mirror moves
        self._campaign_now = asyncio.Event()
        self._leading: asyncio.Task[None] | None = None
        self._leader = self._was_leader = False
        self._lease_id, self._lease_until = 0, 0.0
        self._next_revision = 0  # where the watch resumes (0: list everything again)
        self._stopping = threading.Event()
        self._watch_lock = threading.Lock()
        self._watch_call: Any = None
        self._watcher: threading.Thread | None = None

    def _key(self, kind: str, table_name: str, rest: str) -> bytes:
        return self._prefix + f"{kind}/{table_name}/{rest}".encode()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._channel = grpc.insecure_channel(self.target, options=_CHANNEL_OPTIONS)
        self._kv = etcdrpc.KVStub(self._channel)
        self._leases = etcdrpc.LeaseStub(self._channel)
        try:
            revision, objects = await asyncio.to_thread(self._fetch)
        except grpc.RpcError as exc:
            self._channel.close()
            self._channel = None
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

    # ---- the Proposer ---------------------------------------------------------------

    def is_leader(self) -> bool:
        # Only while the lease surely lives: when keep-alives stop getting
        # through, etcd drops it after the TTL, and another manager takes over.
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

    # ---- writing --------------------------------------------------------------------

    async def _commit(self, actions: list[st.Action], timestamp: str, deadline: float) -> int:
        """Commit the batch and return its revision, or raise why it is refused."""
        objects = list(dict.fromkeys((a.table, a.id) for a in actions))
        named = ((a.table, _name_of(a.table, a.object)) for a in actions)
        names = list(dict.fromkeys((t, n) for t, n in named if n is not None))
        reads = [_get(self._head), *(_get(self._key("obj", *k)) for k in objects)]
        reads += [_get(self._key("name", *n)) for n in names]
        with self.state.lock:
            objs = {k: self.state.get(*k) for k in objects}
            snapshot = _Snapshot(objs, {n: self.state.names[n[0]].get(n[1]) for n in names})
        while True:
            try:
                compares, writes = self._plan(actions, snapshot, timestamp)
            except st.StoreError:
                if not snapshot.from_etcd:  # the mirror may lag: only etcd refuses
                    read = await self._call(
                        self._kv.Txn, etcdrpc.TxnRequest(success=reads), deadline
                    )
                    snapshot = self._parse(read, objects, names)
                    continue
                await self._applied(snapshot.head, deadline)  # so the caller's reread sees why
                raise
            writes.append(_put(self._head, b""))
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
            from_etcd=True,
        )

    def _plan(
        self, actions: list[st.Action], snapshot: _Snapshot, timestamp: str
    ) -> tuple[list[Any], list[Any]]:
        """StoreState._check's rules on `snapshot`, then the compares that hold
        while etcd still matches it and the writes StoreState._write would make."""
        exists: dict[Key, bool] = {}
        claimed: dict[Key, str] = {}
        after: dict[Key, Obj | None] = {}  # each object once the batch applied
        owners: dict[Key, str | None] = {}  # each name it touched, likewise
        compares: list[Any] = []
        for a in actions:
            key = (a.table, a.id)
            before = snapshot.objects.get(key)
            version = None if before is None else int(before["Version"]["Index"])
            present = exists.get(key, before is not None)
            if a.op == "create" and present:
                raise st.ObjectExists(f"{a.table} {a.id} already exists")
            if a.op in ("update", "delete"):
                if not present:
                    raise st.ObjectMissing(f"{a.table} {a.id} not found")
                if key not in exists and a.expect is not None and version not in (None, a.expect):
                    raise st.VersionConflict("update out of sequence")
            elif a.op != "create":
                raise st.StoreError(f"unknown store operation {a.op!r}")
            if key not in exists:  # what follows builds on `before`
                compares.append(_pin(self._key("obj", *key), version))
            if (name := _name_of(a.table, a.object)) is not None:
                owner = claimed.get((a.table, name), snapshot.names.get((a.table, name)))
                if owner is not None and owner != a.id:
                    raise st.NameConflict(
                        f"name conflicts with an existing object: {a.table} {name} already exists"
                    )
                if (a.table, name) not in claimed:
                    compares.append(_pin(self._key("name", a.table, name), owner=owner))
                claimed[(a.table, name)] = a.id
            exists[key] = a.op != "delete"

            old = after.get(key, before)
            # Free the old name: an object's name key is its own (batches keep it so).
            old_name = _name_of(a.table, old)
            if old_name is not None and owners.get((a.table, old_name), a.id) == a.id:
                owners[(a.table, old_name)] = None
            if a.op == "delete":
                after[key] = None
                continue
            new = {k: v for k, v in (a.object or {}).items() if k != "Version"}
            new["CreatedAt"] = old["CreatedAt"] if old and old.get("CreatedAt") else timestamp
            new["UpdatedAt"] = timestamp
            after[key] = new
            if name is not None:
                owners[(a.table, name)] = a.id

        writes = []  # etcd refuses a transaction that writes a key twice: final values only
        for key, obj in after.items():
            if obj is not None:
                writes.append(_put(self._key("obj", *key), msgspec.json.encode(obj)))
            elif snapshot.objects.get(key) is not None:
                writes.append(_delete(self._key("obj", *key)))
        for (table_name, name), owner in owners.items():
            if (table_name, name) not in snapshot.names or snapshot.names[
                (table_name, name)
            ] != owner:
                name_key = self._key("name", table_name, name)
                writes.append(
                    _delete(name_key) if owner is None else _put(name_key, owner.encode())
                )
        return compares, writes

    async def _call(self, method: Any, request: Any, deadline: float) -> Any:
        """One etcd call in a thread; NoLeader if etcd does not answer by `deadline`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoLeader(NO_ETCD)
        try:
            return await asyncio.to_thread(method, request, timeout=remaining)
        except grpc.RpcError as exc:
            if exc.code() in _UNREACHABLE:
                raise NoLeader(f"{NO_ETCD} ({exc.code().name})") from None
            raise st.StoreError(f"etcd refused the request: {exc.details()}") from None

    async def _applied(self, revision: int, deadline: float) -> bool:
        """Wait until the mirror reached `revision`; False if not by `deadline`."""
        while self.state.index < revision:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), deadline - time.monotonic())
            if time.monotonic() >= deadline:
                return self.state.index >= revision
        return True

    # ---- the mirror -----------------------------------------------------------------

    def _fetch(self) -> tuple[int, dict[Key, Obj]]:
        start = self._prefix + b"obj/"
        request = etcdrpc.RangeRequest(key=start, range_end=_range_end(start))
        found = self._kv.Range(request, timeout=FETCH_TIMEOUT_SECONDS)
        objects: dict[Key, Obj] = {}
        for kv in found.kvs:
            table_name, _, oid = bytes(kv.key)[len(start) :].decode().partition("/")
            if table_name in TABLES:
                objects[(table_name, oid)] = _decode(kv)
        return int(found.header.revision), objects

    def _resync(self, revision: int, objects: dict[Key, Obj]) -> None:
        """Make the mirror hold `objects` (read at `revision`), as changes."""
        with self.state.lock:
            writes: list[Write] = [
                ("delete", t, oid, None)
                for t, held in self.state.objects.items()
                for oid in held
                if (t, oid) not in objects
            ]
            for (t, oid), obj in objects.items():
                old = self.state.get(t, oid)
                if old is None or old["Version"] != obj["Version"]:
                    writes.append(("create" if old is None else "update", t, oid, obj))
            self.state.apply_external(revision, writes)
        self._moved()

    def _watch_forever(self, stub: Any) -> None:
        """The watch thread. After a broken stream it resumes from the revision
        after the last one it saw; after a compaction it lists everything again."""
        while not self._stopping.is_set():
            try:
                if self._next_revision == 0:
                    revision, objects = self._fetch()
                    self._hop(self._resync, revision, objects)
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

        def requests() -> Iterator[Any]:
            yield etcdrpc.WatchRequest(
                create_request=etcdrpc.WatchCreateRequest(
                    key=self._prefix,
                    range_end=_range_end(self._prefix),
                    start_revision=self._next_revision,
                )
            )
            ended.wait()  # keep our side open: closing it ends the watch

        with self._watch_lock:
            if self._stopping.is_set():
                return
            self._watch_call = call = stub.Watch(requests())
        try:
            for response in call:
                if response.compact_revision:
                    self._next_revision = 0
                    return
                if response.canceled:
                    return
                if response.events:
                    revisions = self._parse_events(response.events)
                    self._next_revision = revisions[-1].revision + 1
                    self._hop(self._mirror, revisions)
        finally:
            ended.set()

    def _parse_events(self, events: Any) -> list[_Revision]:
        # etcd sends a revision's events together: grouped, a batch applies whole.
        revisions: list[_Revision] = []
        for event in events:
            kv, deleted = event.kv, event.type == _DELETE
            if not revisions or revisions[-1].revision != kv.mod_revision:
                revisions.append(_Revision(int(kv.mod_revision)))
            current = revisions[-1]
            kind, _, rest = bytes(kv.key)[len(self._prefix) :].decode().partition("/")
            if kind == "head":
                current.batch = True
            elif kind == "leader":
                current.leader = "" if deleted else kv.value.decode()
            elif kind == "obj" and (parts := rest.partition("/"))[0] in TABLES:
                table_name, _, oid = parts
                op = "delete" if deleted else "create" if kv.version == 1 else "update"
                current.writes.append((op, table_name, oid, None if deleted else _decode(kv)))
        return revisions

    def _hop(self, fn: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _mirror(self, revisions: list[_Revision]) -> None:
        for revision in revisions:
            # A revision that only moved the leader key leaves the store index be.
            if revision.writes or revision.batch:
                self.state.apply_external(revision.revision, revision.writes)
            if revision.leader is not None and revision.leader != self.id:
                self._leader = False
                if revision.leader == "":
                    self._campaign_now.set()
        self._note_leadership()
        self._moved()

    def _moved(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    # ---- leadership -----------------------------------------------------------------

    async def _lead_forever(self) -> None:
        """Keep a lease alive, and campaign for the leader key with it."""
        while True:
            try:
                await self._keep_lease()
                if self._lease_id and not self._leader:
                    await self._campaign()
            except (NoLeader, st.StoreError, grpc.RpcError):
                pass  # is_leader() turns false by itself once the lease may be gone
            self._note_leadership()
            self._campaign_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._campaign_now.wait(), KEEPALIVE_SECONDS)

    async def _keep_lease(self) -> None:
        sent = time.monotonic()
        if self._lease_id == 0:
            request = etcdrpc.LeaseGrantRequest(TTL=LEASE_TTL_SECONDS)
            grant = await self._call(self._leases.LeaseGrant, request, sent + 1.0)
            self._lease_id, self._lease_until = int(grant.ID), sent + int(grant.TTL)
            return
        ttl = await asyncio.to_thread(self._keepalive, self._lease_id)
        if ttl > 0:
            self._lease_until = sent + ttl
        else:  # expired, and the leader key with it
            self._lease_id, self._leader = 0, False

    def _keepalive(self, lease_id: int) -> int:
        request = etcdrpc.LeaseKeepAliveRequest(ID=lease_id)
        for answer in self._leases.LeaseKeepAlive(iter([request]), timeout=1.0):
            return int(answer.TTL)
        return 0

    async def _campaign(self) -> None:
        me = self.id.encode()
        free = etcdrpc.Compare(
            key=self._leader_key, target=etcdrpc.Compare.CREATE, create_revision=0
        )
        take = _put(self._leader_key, me, self._lease_id)
        txn = etcdrpc.TxnRequest(compare=[free], success=[take], failure=[_get(self._leader_key)])
        answer = await self._call(self._kv.Txn, txn, time.monotonic() + 1.0)
        held = answer.succeeded
        if not held and (kvs := answer.responses[0].response_range.kvs):
            held = kvs[0].value == me and kvs[0].lease == self._lease_id
        self._leader = bool(held)

    def _note_leadership(self) -> None:
        if self.is_leader() != self._was_leader:
            self._was_leader = not self._was_leader
            self.leader_changed.set()
