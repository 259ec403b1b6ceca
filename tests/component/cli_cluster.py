"""A whole manager in this process for CLI tests: the real API on a unix
socket (the local admin, as on a manager's host), the leader's loops, and
simulated agents on three nodes. It runs on its own thread and event loop, so
a test can run the real `clusterctl` as a subprocess against it:

    with in_process_cluster(tmp_path) as cluster:
        done = cluster.clusterctl("service", "ls")   # adds --manager unix://…
        tasks = cluster.view(lambda tx: tx.all("task"))
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from manager.dispatcher import Dispatcher, DispatcherLoops
from manager.http.app import make_app
from manager.http.context import APIContext, ManagerInfo
from manager.http.dispatcher_api import DISPATCHER, DispatcherRef
from manager.reconciler import Reconciler
from manager.secret_box import SecretBox
from manager.store.proposer import MemoryProposer
from manager.store.state import StoreState
from manager.store.store import ReadTx, Store, WriteTx
from tests.component.api_client import SoleLeader
from tests.component.simulated_agents import node, simulated_agents

T = TypeVar("T")
CLUSTERCTL = str(Path(sys.executable).parent / "clusterctl")
WORKERS = (("w" * 24 + "1", "worker-1"), ("w" * 24 + "2", "worker-2"))


@dataclass
class InProcessCluster:
    socket: Path
    store: Store
    loop: asyncio.AbstractEventLoop

    @property
    def manager(self) -> str:
        return f"unix://{self.socket}"

    def clusterctl(
        self, *args: str, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real clusterctl, pointed at this manager ($CLUSTERCTL_MANAGER)."""
        return subprocess.run(
            [CLUSTERCTL, *args],
            env={**os.environ, "CLUSTERCTL_MANAGER": self.manager},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the manager's loop (its store is not thread-safe)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def view(self, fn: Callable[[ReadTx], T]) -> T:
        async def read() -> T:
            return self.store.view(fn)

        return self.run(read())

    def update(self, fn: Callable[[WriteTx], None]) -> None:
        self.run(self.store.update(fn))

    def api(self, method: str, path: str, body: Any = None) -> Any:
        async def call() -> Any:
            connector = aiohttp.UnixConnector(path=str(self.socket))
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.request(method, f"http://manager{path}", json=body) as reply,
            ):
                answer = await reply.json(content_type=None)
                assert reply.status < 400, answer
                return answer

        return self.run(call())


async def _serve(socket: Path, ready: Callable[[Store], None], stop: asyncio.Event) -> None:
    state = StoreState()
    store = Store(state, MemoryProposer(state))
    info = ManagerInfo(
        node_id="m" * 25,
        hostname="manager-1",
        advertise_addr="127.0.0.1:2377",
        raft_addr="127.0.0.1:4242",
        leadership=SoleLeader(),
        ncpu=2,
        memory_bytes=1 << 30,
    )
    app = make_app(APIContext(store, info, SecretBox("cli-test-cluster-key")))
    dispatcher = Dispatcher(store)
    ref = DispatcherRef()
    ref.dispatcher = dispatcher
    app[DISPATCHER] = ref
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.UnixSite(runner, str(socket)).start()
    loops = [
        asyncio.create_task(DispatcherLoops(dispatcher).run()),
        asyncio.create_task(Reconciler(store).run()),
        asyncio.create_task(simulated_agents(store)),
    ]
    ready(store)
    try:
        await stop.wait()
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await runner.cleanup()


@contextmanager
def in_process_cluster(directory: Path, init: bool = True) -> Iterator[InProcessCluster]:
    """A manager (after `swarm init` unless init=False) and two worker nodes."""
    socket = directory / "manager.sock"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    stores: list[Store] = []

    def ready(store: Store) -> None:
        stores.append(store)
        started.set()

    def serve() -> None:
        try:
            loop.run_until_complete(_serve(socket, ready, stop))
        finally:
            started.set()  # a manager that failed to start must not keep the test waiting

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert started.wait(30) and stores, "the in-process manager did not start"
        cluster = InProcessCluster(socket, stores[0], loop)
        if init:
            cluster.api("POST", "/v1.41/swarm/init", {"ListenAddr": "0.0.0.0:2377"})

            def workers(tx: WriteTx) -> None:
                for node_id, hostname in WORKERS:
                    tx.create("node", node(node_id, hostname))

            cluster.update(workers)
        yield cluster
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
