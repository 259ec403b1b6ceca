"""shoal-volumed: one per node. It runs the node's SeaweedFS processes (a
master on managers, a volume server and a filer everywhere), serves Docker's
volume plugin protocol on a unix socket for the agent, and /metrics.

    async with Volumed(config) as volumed: await volumed.run()
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from api.serving import metrics_app, metrics_handler, serve_tcp, serve_unix
from volumed.backend import LocalBackend, VolumeBackend
from volumed.metrics import VolumedMetrics
from volumed.plugin import make_plugin_app
from volumed.seaweed import NodeLayout, Supervisor, node_processes, weed_binary
from volumed.shoal import ShoalBackend
from volumed.volumes import Volumes

log = logging.getLogger("shoal.volumed")


@dataclass(frozen=True)
class VolumedConfig:
    data_dir: Path
    socket_path: Path
    metrics_addr: str = ""
    # No masters: no SeaweedFS here, only the local driver.
    masters: tuple[str, ...] = ()
    role: str = "worker"  # manager nodes also run a SeaweedFS master
    ip: str = "127.0.0.1"  # this node's address, as SeaweedFS knows it
    master_port: int = 9333
    volume_port: int = 8080
    filer_port: int = 8888
    volume_size_limit_mb: int = 1024

    def layout(self) -> NodeLayout:
        return NodeLayout(
            data_dir=self.data_dir / "seaweedfs",
            ip=self.ip,
            masters=self.masters,
            role=self.role,
            master_port=self.master_port,
            volume_port=self.volume_port,
            filer_port=self.filer_port,
            volume_size_limit_mb=self.volume_size_limit_mb,
        )


class Volumed:
    def __init__(self, config: VolumedConfig) -> None:
        self.config = config
        backends: dict[str, VolumeBackend] = {"local": LocalBackend(config.data_dir / "local")}
        self.supervisor: Supervisor | None = None
        if config.masters:
            weed = weed_binary()
            layout = config.layout()
            self.supervisor = Supervisor(node_processes(weed, layout))
            backends["shoal"] = ShoalBackend(layout.data_dir, layout.filer_addr, weed)
        self.volumes = Volumes(config.data_dir / "volumes.json", backends)
        self.metrics = VolumedMetrics(self)
        self._runners: list[web.AppRunner] = []

    async def __aenter__(self) -> Volumed:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.volumes.load()
        app = make_plugin_app(self.volumes, self.metrics.observe)
        app.router.add_get("/metrics", metrics_handler(self.metrics.registry))
        self._runners.append(await serve_unix(app, self.config.socket_path))
        if self.config.metrics_addr:
            self._runners.append(
                await serve_tcp(metrics_app(self.metrics.registry), self.config.metrics_addr)
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.volumes.close()

    async def run(self) -> None:
        """Until cancelled: the SeaweedFS processes supervised, the plugin API served."""
        async with asyncio.TaskGroup() as group:
            if self.supervisor is not None:
                group.create_task(self.supervisor.run())
            # Calls wait on the volumes' lock until the mounts are back.
            await self.volumes.recover()
            log.info("volumes recovered: %d known", len(self.volumes.volumes))
            await asyncio.Event().wait()
