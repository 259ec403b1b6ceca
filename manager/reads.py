"""Reads on a follower that never go back in time: before answering, a follower
asks the leader how far it has committed and waits until it applied as much
(Raft's ReadIndex, over the managers' API)."""

from __future__ import annotations

import asyncio
import time

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

    def __init__(self, proposer: RaftProposer, store: Store, timeout: float = 1.0) -> None:
        self.proposer = proposer
        self.store = store
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def is_leader(self) -> bool:
        return self.proposer.is_leader()

    def leader(self) -> str | None:
        return self.proposer.leader()

    def _leader_api(self) -> str | None:
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
        address = self._leader_api()
        if address is None:
            raise NoLeader("no leader to read from")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.get(f"http://{address}{COMMIT_INDEX_PATH}") as reply:
            target = int((await reply.json())["Index"])
        deadline = time.monotonic() + self.timeout
        while int(self.proposer.status().get("last_applied") or 0) < target:
            if time.monotonic() > deadline:
                raise NoLeader("this manager could not catch up with the leader")
            await asyncio.sleep(0.002)

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
