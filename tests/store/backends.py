"""The store backends the conformance suite runs against: memory, Raft (three
replicas in this process, on loopback ports) and etcd (three replicas over a
real etcd server, started for the test and killed after it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from manager.store.etcd import EtcdProposer
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


class EtcdServer:
    """A real etcd, alone in its cluster, on loopback ports; its data under
    `data_dir`, so a kill and a start again keep the store and its revisions."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{free_port()}"
        self.peer_url = f"http://127.0.0.1:{free_port()}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 20) -> None:
        etcd = shutil.which("etcd")
        if etcd is None:
            raise RuntimeError("no etcd on PATH: install etcd-server (scripts/bootstrap.sh --dev)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "etcd.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                etcd, "--name", "default", "--data-dir", str(self.data_dir / "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f"default={self.peer_url}",
                stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self._healthy):
            if self.process.returncode is not None or time.monotonic() > deadline:
                log_text = (self.data_dir / "etcd.log").read_text()[-2000:]
                await self.kill()
                raise RuntimeError(f"etcd did not start:\n{log_text}")
            await asyncio.sleep(0.05)

    def _healthy(self) -> bool:
        # No proxy, whatever the environment says: this is loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.url}/health", timeout=1) as answer:
                return b'"health":"true"' in answer.read()
        except OSError:
            return False

    async def kill(self) -> None:
        """SIGKILL, by PID: no clean shutdown to lean on."""
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        self.process = None


@asynccontextmanager
async def etcd_server(data_dir: Path) -> AsyncIterator[EtcdServer]:
    server = EtcdServer(data_dir)
    try:
        await server.start()
        yield server
    finally:
        await server.kill()


async def wait_for_one_leader(proposers: list[EtcdProposer], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while sum(p.is_leader() for p in proposers) != 1:
        if time.monotonic() > deadline:
            raise TimeoutError("no manager took the etcd leader key")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def etcd_cluster(data_dir: Path, size: int = 3) -> AsyncIterator[list[Store]]:
    """`size` managers (each its own StoreState) over one etcd, under a prefix
    of their own."""
    prefix = f"/shoal-test-{uuid.uuid4().hex[:8]}"
    async with etcd_server(data_dir / "etcd") as server:
        proposers = [EtcdProposer(StoreState(), [server.url], prefix) for _ in range(size)]
        try:
            for proposer in proposers:
                await proposer.start()
            await wait_for_one_leader(proposers)
            yield [Store(p.state, p) for p in proposers]
        finally:
            for proposer in proposers:
                await proposer.stop()
