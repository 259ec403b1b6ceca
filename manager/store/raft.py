"""The Raft backend: pysyncobj replicates the store's entries between managers.

ONE replicated method, `apply_entry`, carries a versioned JSON entry (see
state.py) — so adding features never changes what old log entries mean.
Concurrent proposals are batched into one entry. The journal and the dump live
in the data directory; the dump holds the store as JSON.

pysyncobj runs its own thread; results cross back into asyncio with
`call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.syncobj import FAIL_REASON

from api.base import now_time
from manager.store.proposer import NoLeader
from manager.store.state import Action, BatchResult, StoreState, encode_entry

MAX_BATCHES_PER_ENTRY = 512
WRITE_TIMEOUT_SECONDS = 2.0
NO_LEADER_MESSAGE = "the cluster has no leader: a majority of managers is not reachable"


class _ReplicatedStore(SyncObjConsumer):  # type: ignore[misc]
    def __init__(self, state: StoreState) -> None:
        super().__init__()
        self._store_state = state

    @replicated  # type: ignore[untyped-decorator]
    def apply_entry(self, payload: bytes) -> list[tuple[int, tuple[str, str] | None]]:
        try:
            return [(r.index, r.error) for r in self._store_state.apply(payload)]
        except Exception as exc:  # a bad entry must not stop the replica
            return [(self._store_state.index, ("error", f"unreadable store entry: {exc}"))]

    def _serialize(self) -> dict[str, bytes]:
        return {"store": self._store_state.snapshot()}

    def _deserialize(self, data: dict[str, bytes]) -> None:
        self._store_state.restore(data["store"])


@dataclass(frozen=True)
class RaftConfig:
    address: str  # host:port this manager's Raft listens on and is known by
    peers: tuple[str, ...]  # the other managers' Raft addresses
    data_dir: Path
    password: str | None = None  # encrypts and authenticates Raft traffic
    election_min: float = 0.4
    election_max: float = 1.2


class RaftProposer:
    def __init__(self, state: StoreState, config: RaftConfig) -> None:
        self.state = state
        self.config = config
        self._consumer = _ReplicatedStore(state)
        self._queue: list[tuple[list[Action], asyncio.Future[BatchResult]]] = []
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.leader_changed = asyncio.Event()
        self.syncobj: SyncObj | None = None
        self._applied_waiters: list[tuple[int, asyncio.Future[None]]] = []
        state.index_listeners.append(self._on_index)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        conf = SyncObjConf(
            password=self.config.password,
            journalFile=str(self.config.data_dir / "raft.journal"),
            fullDumpFile=str(self.config.data_dir / "raft.dump"),
            dynamicMembershipChange=True,
            useFork=False,  # never fork a threaded asyncio process
            raftMinTimeout=self.config.election_min,
            raftMaxTimeout=self.config.election_max,
            leaderFallbackTimeout=self.config.election_max * 2,
            appendEntriesPeriod=0.01,
            appendEntriesUseBatch=False,  # send each new entry at once, not on the next beat
            # pysyncobj commits on its tick: a short tick is a short write latency.
            autoTickPeriod=0.005,
            connectionRetryTime=0.5,
            onStateChanged=self._state_changed,
        )
        self.syncobj = SyncObj(
            self.config.address, list(self.config.peers), conf=conf, consumers=[self._consumer]
        )
        self._flusher = asyncio.create_task(self._flush_forever())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self.syncobj is not None:
            self.syncobj.destroy()
            self.syncobj = None
        for _, future in self._queue:
            if not future.done():
                future.set_exception(NoLeader("the manager is shutting down"))

    def _state_changed(self, old: Any, new: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.leader_changed.set)

    # ---- the Proposer ---------------------------------------------------------

    def is_leader(self) -> bool:
        return self.syncobj is not None and bool(self.syncobj._isLeader())

    def leader(self) -> str | None:
        if self.syncobj is None:
            return None
        node = self.syncobj._getLeader()
        return None if node is None else str(node.address if hasattr(node, "address") else node)

    async def propose(self, actions: list[Action], timestamp: str) -> BatchResult:
        if self.syncobj is None:
            raise NoLeader("the store is not running")
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._queue.append((actions, future))
        self._wake.set()
        deadline = time.monotonic() + WRITE_TIMEOUT_SECONDS
        try:
            result = await asyncio.wait_for(asyncio.shield(future), WRITE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise NoLeader(NO_LEADER_MESSAGE) from None
        # A follower hears the result from the leader, maybe before applying the
        # entry itself: wait for it, so the writer reads its own write.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self.wait_applied(result.index),
                max(0.0, deadline + WRITE_TIMEOUT_SECONDS - time.monotonic()),
            )
        return result

    async def wait_applied(self, index: int) -> None:
        """Until the store here has applied `index` (woken by the applier)."""
        if self.state.index >= index:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._applied_waiters.append((index, future))
        if self.state.index >= index and not future.done():  # applied meanwhile
            future.set_result(None)
        await future

    def _on_index(self, index: int) -> None:
        if self._loop is not None and self._applied_waiters:
            self._loop.call_soon_threadsafe(self._wake_applied, index)

    def _wake_applied(self, index: int) -> None:
        still = []
        for wanted, future in self._applied_waiters:
            if future.done():
                continue
            if wanted <= index:
                future.set_result(None)
            else:
                still.append((wanted, future))
        self._applied_waiters = still

    async def _flush_forever(self) -> None:
        """Everything proposed while the last entry was in flight goes into the
        next entry: under load, one Raft round trip carries many writes."""
        in_flight = asyncio.Semaphore(4)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                taken = self._queue[:MAX_BATCHES_PER_ENTRY]
                del self._queue[:MAX_BATCHES_PER_ENTRY]
                await in_flight.acquire()
                self._send(taken, in_flight.release)

    def _send(
        self,
        taken: list[tuple[list[Action], asyncio.Future[BatchResult]]],
        done: Callable[[], None],
    ) -> None:
        payload = encode_entry(now_time(), [actions for actions, _ in taken])
        loop = self._loop
        assert loop is not None and self.syncobj is not None
        released = False

        def release() -> None:
            # Without a leader pysyncobj may hold an entry and never call back:
            # free the slot anyway, or writes would stall once a leader returns.
            nonlocal released
            if not released:
                released = True
                done()

        loop.call_later(WRITE_TIMEOUT_SECONDS * 2, release)

        def resolve(result: Any, error: Any) -> None:
            release()
            for i, (_, future) in enumerate(taken):
                if future.done():
                    continue
                if error != FAIL_REASON.SUCCESS or result is None:
                    future.set_exception(NoLeader(f"{NO_LEADER_MESSAGE} ({error})"))
                else:
                    index, err = result[i]
                    future.set_result(BatchResult(index, tuple(err) if err else None))

        def callback(result: Any, error: Any) -> None:
            loop.call_soon_threadsafe(resolve, result, error)

        self._consumer.apply_entry(payload, callback=callback)

    async def propose_restore(self, snapshot: bytes) -> None:
        """Seed the log with a whole store (after --force-new-cluster)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def callback(result: Any, error: Any) -> None:
            loop.call_soon_threadsafe(
                lambda: future.done() or future.set_result(error)  # type: ignore[func-returns-value]
            )

        self._consumer.apply_entry(encode_entry(now_time(), [], snapshot), callback=callback)
        error = await asyncio.wait_for(future, 30)
        if error != FAIL_REASON.SUCCESS:
            raise NoLeader(f"seeding the new cluster failed ({error})")

    async def read_barrier(self, timeout: float = WRITE_TIMEOUT_SECONDS) -> None:
        """Wait until this replica applied what the leader had committed."""
        if self.syncobj is None:
            raise NoLeader("the store is not running")
        status = self.syncobj.getStatus()
        target = int(status.get("leader_commit_idx") or status.get("commit_idx") or 0)
        deadline = time.monotonic() + timeout
        while int(self.syncobj.getStatus().get("last_applied") or 0) < target:
            if time.monotonic() > deadline:
                raise NoLeader("this manager could not catch up with the leader")
            await asyncio.sleep(0.005)

    # ---- membership -------------------------------------------------------------

    async def _membership(self, change: Callable[..., None], address: str) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def callback(result: Any, error: Any) -> None:
            loop.call_soon_threadsafe(
                lambda: future.done() or future.set_result(error)  # type: ignore[func-returns-value]
            )

        change(address, callback=callback)
        error = await asyncio.wait_for(future, 10)
        if error != FAIL_REASON.SUCCESS:
            raise NoLeader(f"changing the Raft membership for {address} failed ({error})")

    async def add_member(self, address: str) -> None:
        """Start adding a member; it commits once the member itself runs Raft."""
        assert self.syncobj is not None
        if self.syncobj._isLeader() is not True:
            raise NoLeader("only the leader can add a manager")
        self.syncobj.addNodeToCluster(address, callback=lambda *_: None)

    async def remove_member(self, address: str) -> None:
        assert self.syncobj is not None
        await self._membership(self.syncobj.removeNodeFromCluster, address)

    def status(self) -> dict[str, Any]:
        return {} if self.syncobj is None else dict(self.syncobj.getStatus())
