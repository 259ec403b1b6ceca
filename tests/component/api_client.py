"""A manager API on a memory store, served to an aiohttp test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from manager.http.app import make_app
from manager.http.context import APIContext, ManagerInfo
from manager.store.proposer import MemoryProposer
from manager.store.state import StoreState
from manager.store.store import Store


class SoleLeader:
    def is_leader(self) -> bool:
        return True

    def leader(self) -> str | None:
        return "127.0.0.1:4242"

    async def read_barrier(self) -> None:
        return None


@asynccontextmanager
async def api_client() -> AsyncIterator[TestClient[Any, Any]]:
    state = StoreState()
    info = ManagerInfo(
        node_id="m" * 25,
        hostname="manager-1",
        advertise_addr="127.0.0.1:2377",
        raft_addr="127.0.0.1:4242",
        leadership=SoleLeader(),
        ncpu=2,
        memory_bytes=1 << 30,
    )
    app = make_app(APIContext(Store(state, MemoryProposer(state)), info))
    async with TestClient(TestServer(app)) as client:
        yield client
