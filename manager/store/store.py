"""The store as the manager's components use it: `view(fn)` for consistent
reads, `update(fn)` for writes (one atomic batch, proposed through the
Proposer and applied by every replica), and `watch(since)` for changes.

Writes are optimistic: an update carries the version its writer read, and the
state machine refuses it if the object changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from api.base import now_time as now_rfc3339
from manager.store.proposer import Proposer
from manager.store.state import Action, Change, StoreState
from manager.store.tables import Obj, object_id

T = TypeVar("T")


class WatchTooOld(Exception):
    """The change log no longer reaches back to the asked index: list again."""


class ReadTx:
    def __init__(self, state: StoreState) -> None:
        self._state = state

    @property
    def index(self) -> int:
        return self._state.index

    def get(self, table: str, object_id_: str) -> Obj | None:
        return self._state.get(table, object_id_)

    def by_name(self, table: str, name: str) -> Obj | None:
        return self._state.by_name(table, name)

    def find(self, table: str, index: str, key: str) -> list[Obj]:
        return self._state.find(table, index, key)

    def all(self, table: str) -> list[Obj]:
        return self._state.all(table)


class WriteTx(ReadTx):
    """Reads see this transaction's own writes; writes become one batch."""

    def __init__(self, state: StoreState) -> None:
        super().__init__(state)
        self.actions: list[Action] = []
        self._pending: dict[tuple[str, str], Obj | None] = {}

    def get(self, table: str, object_id_: str) -> Obj | None:
        key = (table, object_id_)
        if key in self._pending:
            pending = self._pending[key]
            return None if pending is None else dict(pending)
        return super().get(table, object_id_)

    def all(self, table: str) -> list[Obj]:
        merged = {object_id(table, o): o for o in super().all(table)}
        for (t, oid), obj in self._pending.items():
            if t != table:
                continue
            if obj is None:
                merged.pop(oid, None)
            else:
                merged[oid] = obj
        return list(merged.values())

    def create(self, table: str, obj: Obj) -> str:
        oid = object_id(table, obj)
        if not oid:
            raise ValueError(f"a new {table} needs an ID")
        self.actions.append(Action("create", table, oid, obj))
        self._pending[(table, oid)] = obj
        return oid

    def update(self, table: str, obj: Obj, *, check_version: bool = True) -> None:
        """Write `obj`; with check_version, only if its Version is still current."""
        oid = object_id(table, obj)
        expect = int(obj["Version"]["Index"]) if check_version and obj.get("Version") else None
        self.actions.append(Action("update", table, oid, obj, expect))
        self._pending[(table, oid)] = obj

    def delete(self, table: str, object_id_: str, *, expect: int | None = None) -> None:
        self.actions.append(Action("delete", table, object_id_, None, expect))
        self._pending[(table, object_id_)] = None


class Store:
    def __init__(
        self,
        state: StoreState,
        proposer: Proposer,
        on_write: Callable[[float, bool], None] | None = None,
    ) -> None:
        self.state = state
        self.proposer = proposer
        # Told each write's latency and whether it was applied (for metrics).
        self.on_write = on_write

    @property
    def index(self) -> int:
        return self.state.index

    def view(self, fn: Callable[[ReadTx], T]) -> T:
        """A consistent read: no entry is applied while `fn` runs."""
        with self.state.lock:
            return fn(ReadTx(self.state))

    async def update(self, fn: Callable[[WriteTx], T]) -> T:
        """Run `fn` to build a batch, propose it, and return `fn`'s result once
        the batch is applied here; StoreError subclasses say why one is refused."""
        tx = WriteTx(self.state)
        result = fn(tx)
        if tx.actions:
            started = time.monotonic()
            applied = False
            try:
                outcome = await self.proposer.propose(tx.actions, now_rfc3339())
                outcome.raise_error()
                applied = True
            finally:
                if self.on_write is not None:
                    self.on_write(time.monotonic() - started, applied)
        return result

    async def watch(
        self, since: int, tables: frozenset[str] | None = None
    ) -> AsyncGenerator[Change, None]:
        """Every change after index `since`, then new ones as they apply."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[Change]] = asyncio.Queue()

        def listener(changes: list[Change]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, changes)

        with self.state.lock:
            backlog = self.state.changes_since(since)
            if backlog is None:
                raise WatchTooOld(f"changes since index {since} are no longer kept")
            self.state.listeners.append(listener)
        # Registered under the same lock the backlog was read under: each later
        # change arrives exactly once, from the backlog or from the queue.
        try:
            pending: list[Change] = backlog
            while True:
                for change in pending:
                    if tables is None or change.table in tables:
                        yield change
                pending = await queue.get()
        finally:
            with contextlib.suppress(ValueError), self.state.lock:
                self.state.listeners.remove(listener)

    def view_and_watch(
        self, fn: Callable[[ReadTx], T], tables: frozenset[str] | None = None
    ) -> tuple[T, AsyncGenerator[Change, None]]:
        """A snapshot and every change after it, with nothing missed between
        (the watch resumes from the snapshot's index)."""
        with self.state.lock:
            result = fn(ReadTx(self.state))
            return result, self.watch(self.state.index, tables)
