"""A manager API on a memory store, served to an aiohttp test client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from manager.dispatcher import Dispatcher, DispatcherLoops
from manager.http.app import make_app
from manager.http.context import APIContext, ManagerInfo
from manager.http.dispatcher_api import DISPATCHER, DispatcherRef
from manager.http.identity import LOCAL_ADMIN, PLAIN_TCP_IDENTITY
from manager.reconciler import Reconciler
from manager.secret_box import SecretBox
from manager.store.proposer import MemoryProposer
from manager.store.state import StoreState
from manager.store.store import Store
from manager.volumed_client import VolumeData


class SoleLeader:
    def is_leader(self) -> bool:
        return True

    def leader(self) -> str | None:
        return "127.0.0.1:4242"

    async def read_barrier(self) -> None:
        return None


@asynccontextmanager
async def api_client(
    leader_loops: bool = False, volume_data: VolumeData | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    """With leader_loops, the dispatcher and the reconciler run as on a leader;
    volume_data stands in for the manager host's volumed."""
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
    store = Store(state, MemoryProposer(state))
    app = make_app(APIContext(store, info, SecretBox("component-test-cluster-key"), volume_data))
    ref = DispatcherRef()
    app[DISPATCHER] = ref
    app[PLAIN_TCP_IDENTITY] = LOCAL_ADMIN  # the test client plays the local admin
    loops: list[asyncio.Task[None]] = []
    if leader_loops:
        ref.dispatcher = Dispatcher(store)
        loops = [
            asyncio.create_task(DispatcherLoops(ref.dispatcher).run()),
            asyncio.create_task(Reconciler(store).run()),
        ]
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
