"""ContainerdRuntime: the real `ContainerRuntime`, on one host's containerd.

Containers get their output written by a logging binary that containerd's
shim starts (runtime/json_logger.py), so logs keep flowing while the process
using this driver restarts; after a restart `list_containers` finds every
container by its label and `wait` re-attaches to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from containerd.services.containers.v1 import containers_pb2
from containerd.services.snapshots.v1 import snapshots_pb2
from containerd.services.tasks.v1 import tasks_pb2
from google.protobuf import any_pb2

from runtime import content, host_files, oci_spec
from runtime.config import RuntimeConfig
from runtime.containerd_client import (
    SNAPSHOTTER,
    Containerd,
    ContainerdError,
    ContainerdNotFound,
)
from runtime.exec_process import run_exec
from runtime.images import ImageInfo, ImageStore, import_layout
from runtime.logs import LogEntry, follow_logs, read_logs
from runtime.oci_spec import parse_signal
from runtime.protocol import (
    MANAGED_LABEL,
    ContainerConfig,
    ContainerInfo,
    ContainerNotFound,
    ContainerRuntimeError,
    ContainerStats,
    ExecResult,
    ExitStatus,
    ImageSummary,
)
from runtime.registry import RegistryClient

RUNC_V2 = "io.containerd.runc.v2"
SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"
STOP_SIGNAL_LABEL = "shoal.stop-signal"
STOP_GRACE_LABEL = "shoal.stop-grace-ns"
TASK_STATES = {0: "unknown", 1: "created", 2: "running", 3: "stopped", 4: "paused", 5: "pausing"}


def _summary(info: ImageInfo) -> ImageSummary:
    return ImageSummary(info.name, info.target.digest, info.size, info.config)


class ContainerdRuntime:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.client = Containerd(config.socket, config.namespace)
        self._session: aiohttp.ClientSession | None = None
        self.images: ImageStore | None = None
        self.logger_binary = config.state_dir / "bin" / "shoal-json-logger"

    async def __aenter__(self) -> ContainerdRuntime:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        self._install_logger()
        self._session = aiohttp.ClientSession()
        registry = RegistryClient(self._session, self.config.insecure_registries)
        self.images = ImageStore(self.client, registry)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.client.close()

    def _install_logger(self) -> None:
        """Write the logging binary the shim runs: our json_logger with this
        interpreter, without site-packages (it needs only the stdlib)."""
        source = (Path(__file__).parent / "json_logger.py").read_text()
        text = f"#!{sys.executable} -S\n{source}"
        self.logger_binary.parent.mkdir(parents=True, exist_ok=True)
        if not self.logger_binary.exists() or self.logger_binary.read_text() != text:
            tmp = self.logger_binary.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(self.logger_binary)

    def _store(self) -> ImageStore:
        if self.images is None:
            raise ContainerRuntimeError("runtime not opened")
        return self.images

    # ---- images -------------------------------------------------------------

    async def pull(self, image: str) -> ImageSummary:
        return _summary(await self._store().pull(image))

    async def inspect_image(self, image: str) -> ImageSummary:
        return _summary(await self._store().inspect(image))

    async def list_images(self) -> list[ImageSummary]:
        return [_summary(i) for i in await self._store().list()]

    async def remove_image(self, image: str) -> None:
        await self._store().remove(image)

    async def import_image(self, layout_tar: Path) -> list[ImageSummary]:
        return [_summary(i) for i in await import_layout(self._store(), layout_tar)]

    # ---- paths --------------------------------------------------------------

    def container_dir(self, container_id: str) -> Path:
        return self.config.state_dir / "containers" / container_id

    def log_path(self, container_id: str) -> Path:
        return self.config.state_dir / "logs" / f"{container_id}.log"

    def cgroups_path(self, container_id: str) -> str:
        return f"/{self.config.cgroup_parent.strip('/')}/{container_id}"

    def _log_uri(self, container_id: str) -> str:
        query = "&".join(
            [
                f"path={quote(str(self.log_path(container_id)), safe='')}",
                f"max-size={self.config.log_max_bytes}",
                f"max-files={self.config.log_max_files}",
            ]
        )
        return f"binary://{self.logger_binary}?{query}"

    # ---- containers ---------------------------------------------------------

    async def create(self, config: ContainerConfig) -> None:
        """Container record, snapshot and task; the process is not started."""
        image = await self._store().inspect(config.spec.image)
        cid = config.id
        directory = self.container_dir(cid)
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path(cid).parent.mkdir(parents=True, exist_ok=True)
        created_snapshot = created_container = False
        # Until the container record points at the new snapshot, only a lease
        # keeps containerd's garbage collector from taking it.
        lease = await content.create_lease(self.client, minutes=5)
        try:
            prepare = snapshots_pb2.PrepareSnapshotRequest(
                snapshotter=SNAPSHOTTER, key=cid, parent=image.chain_id
            )
            mounts = (
                await self.client.call(
                    self.client.snapshots.Prepare,
                    prepare,
                    f"container {cid}: preparing rootfs",
                    lease=lease,
                )
            ).mounts
            created_snapshot = True
            spec = self._build_spec(config, image, list(mounts), directory)
            await self._create_container(config, image, spec)
            created_container = True
            await content.delete_lease(self.client, lease)
            request = tasks_pb2.CreateTaskRequest(
                container_id=cid,
                rootfs=list(mounts),
                stdout=self._log_uri(cid),
                stderr=self._log_uri(cid),
            )
            await self.client.call(self.client.tasks.Create, request, f"container {cid}: create")
        except BaseException:
            await content.delete_lease(self.client, lease)
            await self._cleanup(cid, created_container, created_snapshot)
            raise

    def _build_spec(
        self, config: ContainerConfig, image: ImageInfo, mounts: list[Any], directory: Path
    ) -> dict[str, Any]:
        spec = config.spec
        dirs = host_files.snapshot_dirs(mounts)
        hostname = spec.hostname or config.id[:12]
        (directory / "hosts").write_text(oci_spec.hosts_file(hostname, spec.hosts))
        (directory / "hostname").write_text(hostname + "\n")
        files = oci_spec.RuntimeMounts(
            hosts_file=directory / "hosts",
            hostname_file=directory / "hostname",
            resolv_conf=config.resolv_conf,
            init_binary=self.config.init_binary if spec.init else None,
        )
        built = oci_spec.build_spec(
            spec,
            oci_spec.ImageConfig.from_json(image.config),
            limits=config.limits,
            cgroups_path=self.cgroups_path(config.id),
            netns_path=config.netns_path,
            passwd=host_files.read_snapshot_file(dirs, "etc/passwd"),
            group=host_files.read_snapshot_file(dirs, "etc/group"),
            files=files,
        )
        built["hostname"] = hostname
        return built

    async def _create_container(
        self, config: ContainerConfig, image: ImageInfo, spec: dict[str, Any]
    ) -> None:
        image_config = oci_spec.ImageConfig.from_json(image.config)
        stop_signal = config.spec.stop_signal or image_config.stop_signal or "SIGTERM"
        parse_signal(stop_signal)  # refuse a bad signal now, not at stop time
        grace = config.spec.stop_grace_period
        labels = {
            **self.config.extra_labels,
            **config.labels,
            MANAGED_LABEL: "true",
            STOP_SIGNAL_LABEL: stop_signal,
            STOP_GRACE_LABEL: str(grace if grace is not None else 10_000_000_000),
        }
        container = containers_pb2.Container(
            id=config.id,
            labels=labels,
            image=image.name,
            runtime=containers_pb2.Container.Runtime(name=RUNC_V2),
            spec=any_pb2.Any(type_url=SPEC_TYPE, value=json.dumps(spec).encode()),
            snapshotter=SNAPSHOTTER,
            snapshot_key=config.id,
        )
        await self.client.call(
            self.client.containers.Create,
            containers_pb2.CreateContainerRequest(container=container),
            f"container {config.id}: create",
        )

    async def start(self, container_id: str) -> int:
        reply = await self._task_call(
            self.client.tasks.Start,
            tasks_pb2.StartRequest(container_id=container_id),
            container_id,
            "start",
        )
        return int(reply.pid)

    async def _task_call(
        self, method: Any, request: Any, cid: str, what: str, timeout: float | None = 60.0
    ) -> Any:
        try:
            return await self.client.call(
                method, request, f"container {cid}: {what}", timeout=timeout
            )
        except ContainerdNotFound:
            raise ContainerNotFound(f"no container {cid} on this host") from None

    async def wait(self, container_id: str) -> ExitStatus:
        reply = await self._task_call(
            self.client.tasks.Wait,
            tasks_pb2.WaitRequest(container_id=container_id),
            container_id,
            "wait",
            timeout=None,
        )
        exited = datetime.fromtimestamp(reply.exited_at.ToNanoseconds() / 1e9, UTC)
        oom = host_files.oom_kills(self.cgroups_path(container_id)) > 0
        return ExitStatus(int(reply.exit_status), oom, exited)

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        request = tasks_pb2.KillRequest(
            container_id=container_id, signal=parse_signal(signal), all=True
        )
        await self._task_call(self.client.tasks.Kill, request, container_id, "kill")

    async def stop(self, container_id: str, grace: float | None = None) -> ExitStatus:
        """The stop signal, the grace period, then SIGKILL."""
        labels = await self._labels(container_id)
        if grace is None:
            grace = int(labels.get(STOP_GRACE_LABEL, "10000000000")) / 1e9
        waiter = asyncio.create_task(self.wait(container_id))
        await asyncio.sleep(0)  # the Wait call is registered before the signal goes out
        try:
            with contextlib.suppress(ContainerdError):
                await self.kill(container_id, labels.get(STOP_SIGNAL_LABEL, "SIGTERM"))
            try:
                return await asyncio.wait_for(asyncio.shield(waiter), grace)
            except TimeoutError:
                await self.kill(container_id, "SIGKILL")
                return await waiter
        finally:
            if not waiter.done():
                waiter.cancel()

    async def _labels(self, container_id: str) -> dict[str, str]:
        try:
            reply = await self.client.call(
                self.client.containers.Get,
                containers_pb2.GetContainerRequest(id=container_id),
                f"container {container_id}",
            )
        except ContainerdNotFound:
            raise ContainerNotFound(f"no container {container_id} on this host") from None
        return dict(reply.container.labels)

    async def delete(self, container_id: str, *, remove_logs: bool = False) -> None:
        """Task (killed first if it still runs), container, snapshot, files."""
        try:
            await self._labels(container_id)  # not found -> clear error
            await self._cleanup(container_id, True, True)
        finally:  # the logs go even when the container went before them
            if remove_logs:
                for path in self.log_path(container_id).parent.glob(f"{container_id}.log*"):
                    path.unlink(missing_ok=True)

    async def _cleanup(self, cid: str, container: bool, snapshot: bool) -> None:
        with contextlib.suppress(ContainerdNotFound):
            get = await self.client.call(
                self.client.tasks.Get, tasks_pb2.GetRequest(container_id=cid), "task"
            )
            if TASK_STATES.get(get.process.status) in ("running", "paused", "pausing"):
                with contextlib.suppress(ContainerdError):
                    await self.kill(cid, "SIGKILL")
                with contextlib.suppress(ContainerdError):
                    await asyncio.wait_for(self.wait(cid), 10)
            await self.client.call(
                self.client.tasks.Delete,
                tasks_pb2.DeleteTaskRequest(container_id=cid),
                f"container {cid}: delete task",
            )
        if container:
            with contextlib.suppress(ContainerdNotFound):
                await self.client.call(
                    self.client.containers.Delete,
                    containers_pb2.DeleteContainerRequest(id=cid),
                    f"container {cid}: delete",
                )
        if snapshot:
            with contextlib.suppress(ContainerdNotFound):
                await self.client.call(
                    self.client.snapshots.Remove,
                    snapshots_pb2.RemoveSnapshotRequest(snapshotter=SNAPSHOTTER, key=cid),
                    f"container {cid}: remove snapshot",
                )
        shutil.rmtree(self.container_dir(cid), ignore_errors=True)

    async def exec(self, container_id: str, argv: list[str], timeout: float = 30.0) -> ExecResult:
        """Run a process in a running container; its exit code and output."""
        try:
            return await run_exec(
                self.client, container_id, argv, timeout, self.container_dir(container_id)
            )
        except ContainerdNotFound:
            raise ContainerNotFound(f"no container {container_id} on this host") from None

    async def list_containers(self) -> list[ContainerInfo]:
        """Every container this runtime made, with its task's state."""
        reply = await self.client.call(
            self.client.containers.List,
            containers_pb2.ListContainersRequest(filters=[f'labels."{MANAGED_LABEL}"==true']),
            "listing containers",
        )
        result = []
        for c in reply.containers:
            state, pid, code = "missing", 0, None
            with contextlib.suppress(ContainerdNotFound):
                task = await self.client.call(
                    self.client.tasks.Get, tasks_pb2.GetRequest(container_id=c.id), "task"
                )
                state = TASK_STATES.get(task.process.status, "unknown")
                pid = int(task.process.pid)
                code = int(task.process.exit_status) if state == "stopped" else None
            result.append(ContainerInfo(c.id, c.image, dict(c.labels), state, pid, code))
        return result

    async def stats(self, container_id: str) -> ContainerStats:
        await self._labels(container_id)
        cpu, usage, limit, pids = host_files.cgroup_stats(self.cgroups_path(container_id))
        return ContainerStats(cpu, usage, limit, pids)

    async def logs(
        self,
        container_id: str,
        *,
        since: datetime | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogEntry]:
        path = self.log_path(container_id)
        if not follow:
            for entry in read_logs(path, since=since, tail=tail):
                yield entry
            return
        async for entry in follow_logs(path, since=since, tail=tail):
            yield entry
