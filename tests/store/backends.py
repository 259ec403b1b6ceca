"""The store backends the conformance suite runs against: memory, Raft (three
replicas in this process, on loopback ports) and etcd (a real etcd server)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from manager.store.proposer import MemoryProposer
from manager.store.raft import RaftConfig, RaftProposer
from manager.store.state import StoreState
from manager.store.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def memory_cluster() -> AsyncIterator[list[Store]]:
    state = StoreState()
    yield [Store(state, MemoryProposer(state))]


async def wait_for_leader(proposers: list[RaftProposer], timeout: float = 20) -> RaftProposer:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [p for p in proposers if p.is_leader()]
        if len(leaders) == 1:
            return leaders[0]
        await asyncio.sleep(0.05)
    raise TimeoutError("no Raft leader was elected")


@asynccontextmanager
async def raft_cluster(data_dir: Path, size: int = 3) -> AsyncIterator[list[Store]]:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(size)]
    proposers = []
    for i, address in enumerate(addresses):
        config = RaftConfig(
            address=address,
            peers=tuple(a for a in addresses if a != address),
            data_dir=data_dir / f"m{i}",
            password="test-cluster-key",
        )
        proposers.append(RaftProposer(StoreState(), config))
    for proposer in proposers:
        proposer.start()
    try:
        await wait_for_leader(proposers)
        yield [Store(p.state, p) for p in proposers]
    finally:
        for proposer in proposers:
            await proposer.stop()
