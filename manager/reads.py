"""Reads on a follower that never go back in time: before answering, a follower
asks the leader how far it has committed and waits until it applied as much
(Raft's ReadIndex, over the managers' API)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from manager.http.context import context
from manager.http.framework import APIError, json_response
from manager.store.proposer import NoLeader
from manager.store.raft import RaftProposer
from manager.store.store import Store

COMMIT_INDEX_PATH = "/shoal/raft/commit-index"


class FollowerReads:
    """The Leadership the API uses: Raft's view, with a ReadIndex barrier."""

    def __init__(
        self,
        proposer: RaftProposer,
        store: Store,
        tls: Callable[[], ssl.SSLContext | None],
        timeout: float = 1.0,
    ) -> None:
        self.proposer = proposer
        self.tls = tls
        self.store = store
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._waiting: list[asyncio.Future[int]] = []
        self._asking: asyncio.Task[None] | None = None

    def is_leader(self) -> bool:
        return self.proposer.is_leader()

    def leader(self) -> str | None:
        return self.proposer.leader()

    def leader_api(self) -> str | None:
        raft_leader = self.proposer.leader()
        if raft_leader is None:
            return None
        for node in self.store.view(lambda tx: tx.all("node")):
            if node.get("RaftAddr") == raft_leader:
                return str((node.get("ManagerStatus") or {}).get("Addr") or "") or None
        return None

    async def read_barrier(self) -> None:
        if self.proposer.is_leader():
            return
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._asking is None or self._asking.done():
            self._asking = asyncio.create_task(self._ask_leader())
        target = await future
        deadline = time.monotonic() + self.timeout
        while int(self.proposer.status().get("last_applied") or 0) < target:
            # Raft indexes count entries the store never sees (no-ops,
            # membership), so wait on the store's progress, then look again.
            if time.monotonic() > deadline:
                raise NoLeader("this manager could not catch up with the leader")
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a
            # cancellation that lands as the wait ends, and the manager hangs
            # on SIGTERM.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.01):
                    await self.proposer.wait_applied(self.store.index + 1)

    async def _ask_leader(self) -> None:
        """One question to the leader answers every reader that was waiting
        when it was sent (ReadIndex batching); later readers ask again."""
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                address = self.leader_api()
                if address is None:
                    raise NoLeader("no leader to read from")
                context = self.tls()
                if context is None:
                    raise NoLeader("no certificate yet to reach the leader with")
                if self._session is None:
                    timeout = aiohttp.ClientTimeout(total=self.timeout)
                    self._session = aiohttp.ClientSession(timeout=timeout)
                url = f"https://{address}{COMMIT_INDEX_PATH}"
                async with self._session.get(url, ssl=context) as reply:
                    index = int((await reply.json())["Index"])
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, NoLeader) as exc:
                for future in batch:
                    if not future.done():
                        future.set_exception(NoLeader(f"cannot reach the leader: {exc}"))
                continue
            for future in batch:
                if not future.done():
                    future.set_result(index)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def commit_index(request: web.Request) -> web.Response:
    """On the leader: how far the log is committed, for followers' reads."""
    leadership = context(request).manager.leadership
    proposer = getattr(leadership, "proposer", None)
    if not isinstance(proposer, RaftProposer) or not proposer.is_leader():
        raise APIError(503, "not the leader")
    return json_response({"Index": int(proposer.status().get("commit_idx") or 0)})
