"""The store's state machine: tables of objects, indexes, and the log of
changes that watchers read. Deterministic: every replica that applies the same
entries in the same order holds the same objects with the same versions.

An *entry* is what one replicated log record carries: a timestamp and a list
of independent *batches*; each batch is atomic (all its actions or none).
Entries are versioned JSON (`ENTRY_FORMAT`), never pickled calls.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from manager.store.tables import TABLES, Obj, object_id, table

ENTRY_FORMAT = 1
CHANGELOG_LENGTH = 50_000


class StoreError(Exception):
    """A batch the state machine refused; the message is meant for the user."""

    kind = "error"


class NameConflict(StoreError):
    kind = "name_conflict"


class VersionConflict(StoreError):
    kind = "version_conflict"


class ObjectMissing(StoreError):
    kind = "missing"


class ObjectExists(StoreError):
    kind = "exists"


ERROR_KINDS: dict[str, type[StoreError]] = {
    c.kind: c for c in (StoreError, NameConflict, VersionConflict, ObjectMissing, ObjectExists)
}


class Action(msgspec.Struct, frozen=True):
    op: str  # create | update | delete
    table: str
    id: str
    object: Obj | None = None
    expect: int | None = None  # the version the writer read; None: unconditional


class Entry(msgspec.Struct, frozen=True):
    v: int
    ts: str  # set by the proposer, so every replica stamps the same time
    batches: list[list[Action]]
    # A whole store to start from (--force-new-cluster seeds a fresh log with
    # it, so every replica, even one joining later, replays the same history).
    restore: str | None = None


@dataclass(frozen=True)
class Change:
    index: int
    table: str
    op: str
    id: str
    object: Obj | None  # the new object, or the deleted one


@dataclass(frozen=True)
class BatchResult:
    index: int
    error: tuple[str, str] | None = None  # (kind, message)

    def raise_error(self) -> None:
        if self.error is not None:
            kind, message = self.error
            raise ERROR_KINDS.get(kind, StoreError)(message)


_encode = msgspec.json.encode
_decode = msgspec.json.decode


class StoreState:
    """Objects are kept encoded, so nothing a reader holds can change the store."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.listeners: list[Callable[[list[Change]], None]] = []
        # Told the new index after every applied entry, changes or not.
        self.index_listeners: list[Callable[[int], None]] = []
        self._reset(0)

    def _reset(self, index: int) -> None:
        self.index = index
        # The changelog holds every change after this index (watchers resuming
        # from further back must list again).
        self.changelog_start = index
        self.objects: dict[str, dict[str, bytes]] = {name: {} for name in TABLES}
        self.names: dict[str, dict[str, str]] = {name: {} for name in TABLES}
        self.indexes: dict[str, dict[str, dict[str, set[str]]]] = {
            name: {ix: {} for ix in t.indexes} for name, t in TABLES.items()
        }
        self.changelog: deque[Change] = deque(maxlen=CHANGELOG_LENGTH)
        self.changelog_truncated = False

    # ---- reads ----------------------------------------------------------------

    def get(self, table_name: str, object_id_: str) -> Obj | None:
        with self.lock:
            raw = self.objects[table_name].get(object_id_)
        return None if raw is None else _decode(raw)

    def by_name(self, table_name: str, name: str) -> Obj | None:
        with self.lock:
            found = self.names[table_name].get(name)
            return None if found is None else self.get(table_name, found)

    def find(self, table_name: str, index: str, key: str) -> list[Obj]:
        with self.lock:
            ids = sorted(self.indexes[table_name][index].get(key, ()))
            return [_decode(self.objects[table_name][i]) for i in ids]

    def all(self, table_name: str) -> list[Obj]:
        with self.lock:
            return [_decode(raw) for raw in self.objects[table_name].values()]

    def changes_since(self, index: int) -> list[Change] | None:
        """Every change after `index`, or None if the log no longer reaches back
        that far (the caller lists again)."""
        with self.lock:
            start = self.changelog_start
            if self.changelog_truncated and self.changelog:
                start = self.changelog[0].index  # that entry may be partly dropped
            if index < start:
                return None
            return [c for c in self.changelog if c.index > index]

    # ---- applying entries -------------------------------------------------------

    def apply(self, payload: bytes) -> list[BatchResult]:
        """Apply one log entry; each batch succeeds or fails on its own."""
        entry = _decode(payload, type=Entry)
        if entry.v != ENTRY_FORMAT:
            raise ValueError(f"store entry format {entry.v} is not understood")
        with self.lock:
            if entry.restore is not None:
                self._restore_locked(msgspec.json.decode(entry.restore.encode()))
            self.index += 1
            results: list[BatchResult] = []
            changes: list[Change] = []
            for batch in entry.batches:
                try:
                    self._check(batch)
                except StoreError as exc:
                    results.append(BatchResult(self.index, (exc.kind, str(exc))))
                    continue
                changes += [self._write(action, entry.ts) for action in batch]
                results.append(BatchResult(self.index))
            if len(self.changelog) + len(changes) > CHANGELOG_LENGTH:
                self.changelog_truncated = True
            self.changelog.extend(changes)
            listeners = list(self.listeners)
            index = self.index
        if changes:
            for listener in listeners:
                listener(changes)
        for index_listener in list(self.index_listeners):
            index_listener(index)
        return results

    def apply_external(self, index: int, writes: list[tuple[str, str, str, Obj | None]]) -> None:
        """Mirror writes another system already decided (the etcd backend):
        (op, table, id, object-with-Version) at `index`; no checks, no stamping."""
        with self.lock:
            changes = []
            for op, table_name, oid, obj in writes:
                old_raw = self.objects[table_name].get(oid)
                old = _decode(old_raw) if old_raw is not None else None
                if old is not None:
                    self._unindex(table_name, oid, old)
                if op == "delete":
                    self.objects[table_name].pop(oid, None)
                    changes.append(Change(index, table_name, "delete", oid, old))
                    continue
                assert obj is not None
                self._store(table_name, oid, obj)
                changes.append(Change(index, table_name, op, oid, obj))
            self.index = max(self.index, index)
            if len(self.changelog) + len(changes) > CHANGELOG_LENGTH:
                self.changelog_truncated = True
            self.changelog.extend(changes)
            listeners = list(self.listeners)
        if changes:
            for listener in listeners:
                listener(changes)

    def _store(self, table_name: str, oid: str, obj: Obj) -> None:
        t = table(table_name)
        self.objects[table_name][oid] = _encode(obj)
        if t.name_of is not None and (name := t.name_of(obj)) is not None:
            self.names[table_name][name] = oid
        for index, key_of in t.indexes.items():
            if (key := key_of(obj)) is not None:
                self.indexes[table_name][index].setdefault(key, set()).add(oid)

    def _check(self, batch: list[Action]) -> None:
        """Refuse the whole batch if any action cannot apply, before writing any.
        A batch sees its own earlier actions (create then update is fine)."""
        exists: dict[tuple[str, str], bool] = {}
        names: dict[tuple[str, str], str | None] = {}
        for action in batch:
            t = table(action.table)
            key = (action.table, action.id)
            present = exists.get(key, action.id in self.objects[action.table])
            current = self.objects[action.table].get(action.id)
            if action.op == "create":
                if present:
                    raise ObjectExists(f"{action.table} {action.id} already exists")
            elif action.op in ("update", "delete"):
                if not present:
                    raise ObjectMissing(f"{action.table} {action.id} not found")
                if action.expect is not None and current is not None and key not in exists:
                    version = int(_decode(current)["Version"]["Index"])
                    if version != action.expect:
                        raise VersionConflict("update out of sequence")
            else:
                raise StoreError(f"unknown store operation {action.op!r}")
            if t.name_of is not None and action.object is not None:
                name = t.name_of(action.object)
                if name is not None:
                    owner = names.get((action.table, name), self.names[action.table].get(name))
                    if owner is not None and owner != action.id:
                        raise NameConflict(
                            f"name conflicts with an existing object: {action.table} {name} "
                            "already exists"
                        )
                    names[(action.table, name)] = action.id
            exists[key] = action.op != "delete"

    def _write(self, action: Action, timestamp: str) -> Change:
        old_raw = self.objects[action.table].get(action.id)
        old = _decode(old_raw) if old_raw is not None else None
        if old is not None:
            self._unindex(action.table, action.id, old)
        if action.op == "delete":
            del self.objects[action.table][action.id]
            return Change(self.index, action.table, "delete", action.id, old)
        obj = dict(action.object or {})
        obj["Version"] = {"Index": self.index}
        obj["CreatedAt"] = old["CreatedAt"] if old and old.get("CreatedAt") else timestamp
        obj["UpdatedAt"] = timestamp
        self._store(action.table, action.id, obj)
        return Change(self.index, action.table, action.op, action.id, obj)

    def _unindex(self, table_name: str, object_id_: str, obj: Obj) -> None:
        t = table(table_name)
        name = t.name_of(obj) if t.name_of is not None else None
        if name is not None and self.names[table_name].get(name) == object_id_:
            del self.names[table_name][name]
        for index, key_of in t.indexes.items():
            key = key_of(obj)
            if key is not None:
                bucket = self.indexes[table_name][index].get(key)
                if bucket is not None:
                    bucket.discard(object_id_)
                    if not bucket:
                        del self.indexes[table_name][index][key]

    # ---- snapshots --------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Everything, as JSON: what a Raft dump or a new member starts from."""
        with self.lock:
            return _encode(
                {
                    "v": ENTRY_FORMAT,
                    "index": self.index,
                    "objects": {
                        t: [_decode(raw) for raw in objs.values()]
                        for t, objs in self.objects.items()
                    },
                }
            )

    def restore(self, data: bytes) -> None:
        with self.lock:
            self._restore_locked(_decode(data))

    def _restore_locked(self, loaded: dict[str, Any]) -> None:
        with self.lock:
            self._reset(int(loaded["index"]))
            for table_name, objs in loaded["objects"].items():
                for obj in objs:
                    self._store(table_name, object_id(table_name, obj), obj)


def encode_entry(
    timestamp: str, batches: list[list[Action]], restore: bytes | None = None
) -> bytes:
    seed = None if restore is None else restore.decode()
    return _encode(Entry(ENTRY_FORMAT, timestamp, batches, seed))
