"""The agent daemon: joins with a token, keeps a session with the managers and
runs this node's tasks through the runtime. `async with Agent(cfg) as a:
await a.run()`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.api import make_api, server_context
from agent.identity import JoinMethod, NodeIdentity
from agent.network import NetdClient
from agent.session import Assignments, ManagerSession, SessionError, retry_forever
from agent.task_files import TaskFiles
from agent.volumes import PluginClient, TaskVolumes
from agent.worker import Worker
from runtime.config import RuntimeConfig
from runtime.driver import ContainerdRuntime

Obj = dict[str, Any]
REPORT_SECONDS = 0.05
CONTAINER_COUNT_SECONDS = 5.0


# Silent heartbeat periods after which this agent stops the tasks that alone
# may write a distributed volume: one fewer than the managers wait before they
# mark the node down (manager/dispatcher.py) and run its tasks elsewhere.
FENCE_PERIODS = 2


@dataclass(frozen=True)
class AgentConfig:
    data_dir: Path
    managers: tuple[str, ...]
    token: str  # used once, for the first certificate
    runtime: RuntimeConfig
    manager_socket: Path | None = None  # a manager on this host gives its node's certificate
    netd_socket: Path | None = None  # netd on this host: containers get networks
    volumed_socket: Path | None = None  # volumed on this host: tasks get volumes
    advertise_addr: str = ""
    metrics_addr: str = ""  # host:port for /metrics; "" for none
    api_addr: str = ""  # host:port for the agent's API (images, builds), HTTPS; "" for none
    labels: dict[str, str] = field(default_factory=dict)


def describe(labels: dict[str, str]) -> Obj:
    return {
        "Hostname": socket.gethostname(),
        "Platform": {"Architecture": platform.machine(), "OS": "linux"},
        "Resources": {
            "NanoCPUs": (os.cpu_count() or 1) * 1_000_000_000,
            "MemoryBytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        },
        "Engine": {"EngineVersion": "shoal", "Labels": labels, "Plugins": []},
    }


class _AgentCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = Counter(r.controller.state for r in self.agent.worker.runners.values())
        tasks = GaugeMetricFamily(
            "swarm_agent_tasks", "Tasks on this node by state", labels=["state"]
        )
        for state, count in sorted(states.items()):
            tasks.add_metric([state], float(count))
        yield tasks
        containers = GaugeMetricFamily(
            "swarm_agent_containers",
            "Containers of this node's runtime by state (as last listed)",
            labels=["state"],
        )
        for state, count in sorted(self.agent.container_states.items()):
            containers.add_metric([state], float(count))
        yield containers
        session = GaugeMetricFamily("swarm_agent_session_up", "1 while a manager answers")
        session.add_metric([], 1.0 if self.agent.session_up else 0.0)
        yield session


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.runtime = ContainerdRuntime(config.runtime)
        self.identity = NodeIdentity(
            config.data_dir / "certificates",
            JoinMethod(config.managers, config.token, config.manager_socket, config.advertise_addr),
        )
        self.session: ManagerSession | None = None
        self.pending: list[Obj] = []
        self.registry = CollectorRegistry()
        self.registry.register(_AgentCollector(self))
        self.pulls = PromCounter(
            "swarm_agent_image_pulls",
            "Image pulls for tasks, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.pull_seconds = Histogram(
            "swarm_agent_image_pull_seconds",
            "Time to pull a task's image (already present: a few ms)",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        networks = NetdClient(config.netd_socket) if config.netd_socket else None
        self.files = TaskFiles(config.data_dir / "task-files")
        plugin = PluginClient(config.volumed_socket) if config.volumed_socket else None
        self.volumes = TaskVolumes(plugin) if plugin else None
        self.worker = Worker(
            self.runtime, self.pending.append, self._pulled, networks, self.files, self.volumes
        )
        self.node_id = ""
        self.session_up = False
        self.last_heartbeat = time.monotonic()
        self.heartbeat_period = 1.0
        self.container_states: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._api_runner: web.AppRunner | None = None
        self.api_tls: ssl.SSLContext | None = None

    async def __aenter__(self) -> Agent:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        tls = await self.identity.obtain()
        self.session = session = ManagerSession(list(self.config.managers), tls)
        await self.runtime.open()
        self.node_id = await retry_forever(
            "register",
            lambda: session.register(
                describe(self.config.labels), self.config.advertise_addr, self.config.api_addr
            ),
        )
        (self.config.data_dir / "node-id").write_text(self.node_id)
        self.session_up = True
        if self.config.metrics_addr:
            await self._serve_metrics()
        if self.config.api_addr:
            await self._serve_api()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._api_runner is not None:
            await self._api_runner.cleanup()
        if self.session is not None:
            await self.session.close()
        await self.runtime.close()

    async def _serve_api(self) -> None:
        files = self.identity.files
        self.api_tls = server_context(files.ca, files.cert, files.key)
        runner = web.AppRunner(make_api(self.runtime), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        host, _, port = self.config.api_addr.rpartition(":")
        await web.TCPSite(runner, host, int(port), ssl_context=self.api_tls).start()
        self._api_runner = runner

    async def _serve_metrics(self) -> None:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.registry), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, _, port = self.config.metrics_addr.rpartition(":")
        await web.TCPSite(self._runner, host, int(port)).start()

    def _pulled(self, seconds: float, ok: bool) -> None:
        self.pulls.labels("ok" if ok else "error").inc()
        self.pull_seconds.observe(seconds)

    async def _count_containers(self) -> None:
        """For /metrics: the runtime's containers, listed every few seconds
        (a scrape must not wait on containerd)."""
        while True:
            with contextlib.suppress(Exception):
                listed = await self.runtime.list_containers()
                self.container_states = Counter(c.state for c in listed)
            await asyncio.sleep(CONTAINER_COUNT_SECONDS)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._count_containers())
            group.create_task(self._heartbeats())
            if self.volumes is not None:
                group.create_task(self._fence_when_cut_off())
            group.create_task(self._assignments())
            group.create_task(self._reports())

    async def _heartbeats(self) -> None:
        assert self.session is not None
        while True:
            try:
                beat = await self.session.heartbeat(self.node_id)
                self.heartbeat_period = beat.period
                self.last_heartbeat = time.monotonic()
                self.session_up = True
                renewed = await self.identity.renew_if_due(self.session.managers, beat.role)
                if renewed and self.api_tls is not None:  # new connections get the new one
                    files = self.identity.files
                    self.api_tls.load_cert_chain(str(files.cert), str(files.key))
            except SessionError:
                self.session_up = False
            await asyncio.sleep(max(self.heartbeat_period / 2, 0.05))

    async def _fence_when_cut_off(self) -> None:
        """Past FENCE_PERIODS heartbeat periods without an answer (a call to an
        unreachable manager may hang for its whole timeout, so this watches
        the clock rather than the calls), tasks that alone may write their
        distributed volume stop, and so give the volume back before the
        managers run them elsewhere."""
        assert self.volumes is not None
        while True:
            await asyncio.sleep(0.25)
            silent = time.monotonic() - self.last_heartbeat
            if silent > FENCE_PERIODS * self.heartbeat_period:
                self.worker.fence(self.volumes.exclusive)

    async def _assignments(self) -> None:
        session = self.session
        assert session is not None
        got: Assignments = await retry_forever(
            "assignments", lambda: session.assignments(self.node_id, 0)
        )
        self._learn(got)
        await self.worker.adopt_existing(got.tasks)
        self.worker.assign(got.tasks)
        while True:
            try:
                got = await session.assignments(self.node_id, got.index)
            except SessionError:
                await asyncio.sleep(0.5)
                continue
            self._learn(got)  # before the tasks that need them
            self.worker.assign(got.tasks)

    def _learn(self, got: Assignments) -> None:
        self.files.learn(got.secrets, got.configs)
        if self.volumes is not None:
            self.volumes.learn(got.volumes)

    async def _reports(self) -> None:
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            if not self.pending:
                continue
            batch = list(self.pending)
            try:
                assert self.session is not None
                await self.session.report(self.node_id, batch)
            except SessionError:
                continue  # kept, sent with the next batch
            del self.pending[: len(batch)]
