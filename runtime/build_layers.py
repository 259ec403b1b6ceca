"""One layer of a build in containerd: an active snapshot on top of the chain
so far, changed by copying into it (mounted here) or by a command run in a
container whose root filesystem it is, turned into a layer blob by
containerd's Diff service, and committed under the layer's chain ID.

Everything is made under the build's lease, so what a crashed build leaves
is collected by containerd; a build container (containers are not leased)
names its lease in a label, and the next build removes the ones whose lease
is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containerd.services.containers.v1 import containers_pb2
from containerd.services.content.v1 import content_pb2
from containerd.services.diff.v1 import diff_pb2
from containerd.services.leases.v1 import leases_pb2
from containerd.services.snapshots.v1 import snapshots_pb2
from containerd.services.tasks.v1 import tasks_pb2
from google.protobuf import any_pb2

from api.container_spec import ContainerSpec, Limits
from runtime import content, host_files, oci_spec
from runtime.containerd_client import (
    SNAPSHOTTER,
    Containerd,
    ContainerdAlreadyExists,
    ContainerdError,
    ContainerdNotFound,
)
from runtime.driver import RUNC_V2, SPEC_TYPE, ContainerdRuntime
from runtime.protocol import ContainerRuntimeError
from runtime.unpack import Descriptor

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
BUILD_LEASE_LABEL = "shoal.build-lease"
MAX_OUTPUT = 256 * 1024  # what a failed RUN's error keeps of its output
MOUNT_TIMEOUT = 60.0
MAX_OPTIONS = 4000  # a page, less room for the kernel's own additions
BUILD_DIR = "build"  # under the runtime's state dir: the FIFOs of RUN containers


@dataclass(frozen=True)
class NewLayer:
    descriptor: Descriptor
    diff_id: str


async def _command(*argv: str, cwd: str | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), MOUNT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ContainerRuntimeError(f"{' '.join(argv)}: timed out") from None
    if process.returncode != 0:
        raise ContainerRuntimeError(f"{' '.join(argv)}: {output.decode(errors='replace').strip()}")


def fit_mount_options(options: list[str]) -> tuple[list[str], str | None]:
    """The kernel takes mount options up to a page; an overlay of many layers
    gets its directories relative to their common parent, where the mount
    then runs (containerd's own trick)."""
    if len(",".join(options)) < MAX_OPTIONS:
        return options, None
    dirs = ("lowerdir", "upperdir", "workdir")
    paths = [
        path
        for option in options
        if option.partition("=")[0] in dirs
        for path in option.partition("=")[2].split(":")
    ]
    common = os.path.commonpath(paths) if paths else "/"
    fitted = []
    for option in options:
        key, equals, value = option.partition("=")
        if key in dirs:
            value = ":".join(os.path.relpath(p, common) for p in value.split(":"))
        fitted.append(f"{key}{equals}{value}")
    return fitted, common


class ActiveLayer:
    """An active snapshot for one step; removed on exit unless committed."""

    def __init__(self, client: Containerd, parent_chain: str, lease: str) -> None:
        self.client = client
        self.parent = parent_chain
        self.lease = lease
        self.key = f"shoal-build-{secrets.token_hex(8)}"
        self.mounts: list[Any] = []
        self._committed = False

    async def __aenter__(self) -> ActiveLayer:
        request = snapshots_pb2.PrepareSnapshotRequest(
            snapshotter=SNAPSHOTTER, key=self.key, parent=self.parent
        )
        reply = await self.client.call(
            self.client.snapshots.Prepare, request, "build: preparing a snapshot", lease=self.lease
        )
        self.mounts = list(reply.mounts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self._committed:
            await _remove_snapshot(self.client, self.key)

    @contextlib.asynccontextmanager
    async def mounted(self) -> AsyncIterator[Path]:
        """The snapshot mounted on a temporary directory of this process."""
        target = Path(tempfile.mkdtemp(prefix="shoal-build-"))
        done = 0
        try:
            for mount in self.mounts:
                fitted, cwd = fit_mount_options(list(mount.options))
                options = ["-o", ",".join(fitted)] if fitted else []
                await _command(
                    "mount", "-t", mount.type, *options, mount.source, str(target), cwd=cwd
                )
                done += 1
            yield target
        finally:
            for _ in range(done):
                try:
                    await _command("umount", str(target))
                except ContainerRuntimeError:
                    # Busy: a cancelled copy's thread may still hold files;
                    # detach now, the kernel finishes when they are closed.
                    await _command("umount", "--lazy", str(target))
            target.rmdir()

    async def diff(self) -> NewLayer:
        """The layer: what changed between the parent and this snapshot, as a
        gzipped tar in the content store (held by the lease)."""
        left: list[Any] = []
        view = f"{self.key}-parent"
        if self.parent:
            request = snapshots_pb2.ViewSnapshotRequest(
                snapshotter=SNAPSHOTTER, key=view, parent=self.parent
            )
            reply = await self.client.call(
                self.client.snapshots.View, request, "build: viewing the parent", lease=self.lease
            )
            left = list(reply.mounts)
        try:
            request = diff_pb2.DiffRequest(
                left=left,
                right=self.mounts,
                media_type=LAYER_MEDIA_TYPE,
                ref=f"shoal-build-diff-{secrets.token_hex(8)}",
            )
            reply = await self.client.call(
                self.client.diff.Diff, request, "build: computing a layer", timeout=1800,
                lease=self.lease,
            )  # fmt: skip
        finally:
            if self.parent:
                await _remove_snapshot(self.client, view)
        desc = reply.diff
        info = await self.client.call(
            self.client.content.Info,
            content_pb2.InfoRequest(digest=desc.digest),
            f"build: layer {desc.digest}",
        )
        diff_id = info.info.labels.get(content.LABEL_UNCOMPRESSED)
        if not diff_id:
            raise ContainerRuntimeError(f"build: layer {desc.digest} has no uncompressed digest")
        return NewLayer(Descriptor(desc.media_type, desc.digest, int(desc.size)), str(diff_id))

    async def commit(self, chain: str) -> None:
        """Commit as `chain`; if that snapshot exists already (same content
        built before), keep it and let this one go."""
        request = snapshots_pb2.CommitSnapshotRequest(
            snapshotter=SNAPSHOTTER, name=chain, key=self.key
        )
        try:
            await self.client.call(
                self.client.snapshots.Commit,
                request,
                f"build: committing {chain}",
                lease=self.lease,
            )
            self._committed = True
        except ContainerdAlreadyExists:
            pass


async def _remove_snapshot(client: Containerd, key: str) -> None:
    request = snapshots_pb2.RemoveSnapshotRequest(snapshotter=SNAPSHOTTER, key=key)
    with contextlib.suppress(ContainerdNotFound):
        await client.call(client.snapshots.Remove, request, f"build: removing snapshot {key}")


# ---- RUN -----------------------------------------------------------------------


class _Output:
    """A process's stdout and stderr through two FIFOs, line by line to a
    callback as they come, and kept (up to MAX_OUTPUT) for an error."""

    def __init__(self, directory: Path, on_line: Callable[[str], None]) -> None:
        self.directory = directory
        self.on_line = on_line
        self.paths = [directory / "stdout", directory / "stderr"]
        self.kept = bytearray()
        self._fds: list[int] = []
        self._partial: dict[int, bytes] = {}

    def __enter__(self) -> _Output:
        self.directory.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        for path in self.paths:
            os.mkfifo(path, 0o600)
            # Read-write, so opening never blocks and EOF never comes early.
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            self._fds.append(fd)
            self._partial[fd] = b""
            loop.add_reader(fd, self._read, fd)
        return self

    def _read(self, fd: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while data := os.read(fd, 65536):
                self._take(fd, data)

    def _take(self, fd: int, data: bytes) -> None:
        self.kept += data
        del self.kept[:-MAX_OUTPUT]
        *lines, self._partial[fd] = (self._partial[fd] + data).split(b"\n")
        for line in lines:
            self.on_line(line.decode(errors="replace"))

    def finish(self) -> str:
        """Read what is left (the process has exited) and flush partial lines."""
        for fd in self._fds:
            self._read(fd)
            if self._partial[fd]:
                self.on_line(self._partial[fd].decode(errors="replace"))
                self._partial[fd] = b""
        return self.kept.decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for fd in self._fds:
            loop.remove_reader(fd)
            os.close(fd)
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class RunProcess:
    argv: list[str]
    env: list[str]  # the image's Env and the build's ARGs
    user: str
    workdir: str


async def run_in_snapshot(
    runtime: ContainerdRuntime,
    layer: ActiveLayer,
    cid: str,
    process: RunProcess,
    on_line: Callable[[str], None],
) -> tuple[int, str]:
    """Run a command in container `cid` with the snapshot as its root
    filesystem (runc; no network: a namespace with only loopback); its exit
    code and output."""
    client = runtime.client
    dirs = host_files.snapshot_dirs(layer.mounts)
    spec = oci_spec.build_spec(
        ContainerSpec(
            image="(build)",
            command=process.argv,
            env=process.env,
            user=process.user,
            dir=process.workdir,
        ),
        oci_spec.ImageConfig(),
        limits=Limits(),
        cgroups_path=runtime.cgroups_path(cid),
        netns_path=None,
        passwd=host_files.read_snapshot_file(dirs, "etc/passwd"),
        group=host_files.read_snapshot_file(dirs, "etc/group"),
        files=oci_spec.RuntimeMounts(),
    )
    spec["hostname"] = cid[-12:]
    # Docker's RUN may gain privileges (su, setuid helpers); the runtime's
    # containers may not, but a build step is not a service.
    spec["process"]["noNewPrivileges"] = False
    container = containers_pb2.Container(
        id=cid,
        labels={BUILD_LEASE_LABEL: layer.lease},
        runtime=containers_pb2.Container.Runtime(name=RUNC_V2),
        spec=any_pb2.Any(type_url=SPEC_TYPE, value=json.dumps(spec).encode()),
    )
    await client.call(
        client.containers.Create,
        containers_pb2.CreateContainerRequest(container=container),
        f"build: container {cid}",
    )
    try:
        with _Output(runtime.config.state_dir / BUILD_DIR / cid, on_line) as output:
            create = tasks_pb2.CreateTaskRequest(
                container_id=cid,
                rootfs=layer.mounts,
                stdout=str(output.paths[0]),
                stderr=str(output.paths[1]),
            )
            await client.call(client.tasks.Create, create, f"build: container {cid}")
            # Wait is asked before Start, so a command that exits at once is not missed.
            waiting = asyncio.ensure_future(
                client.call(
                    client.tasks.Wait,
                    tasks_pb2.WaitRequest(container_id=cid),
                    f"build: container {cid}",
                    timeout=None,
                )
            )
            try:
                start = tasks_pb2.StartRequest(container_id=cid)
                await client.call(client.tasks.Start, start, f"build: container {cid}")
                status = await waiting
            finally:
                waiting.cancel()
            # Deleting the task waits for the shim to copy the last output.
            delete = tasks_pb2.DeleteTaskRequest(container_id=cid)
            await client.call(client.tasks.Delete, delete, f"build: container {cid}")
            return int(status.exit_status), output.finish()
    finally:
        await remove_container(client, cid)


async def remove_container(client: Containerd, cid: str) -> None:
    """Kill (if still running) and delete a build container and its task."""
    with contextlib.suppress(ContainerdNotFound):
        kill = tasks_pb2.KillRequest(container_id=cid, signal=9, all=True)
        with contextlib.suppress(ContainerdError):
            await client.call(client.tasks.Kill, kill, f"build: container {cid}")
        for _ in range(50):  # a killed task takes a moment to be deletable
            try:
                delete = tasks_pb2.DeleteTaskRequest(container_id=cid)
                await client.call(client.tasks.Delete, delete, f"build: container {cid}")
                break
            except ContainerdNotFound:
                raise
            except ContainerdError:
                await asyncio.sleep(0.1)
    with contextlib.suppress(ContainerdNotFound):
        await client.call(
            client.containers.Delete,
            containers_pb2.DeleteContainerRequest(id=cid),
            f"build: container {cid}",
        )


async def remove_orphans(client: Containerd, fifo_root: Path) -> None:
    """Remove build containers whose build is gone (its lease deleted or
    expired), and their FIFOs: what a crashed build left behind."""
    reply = await client.call(
        client.containers.List,
        containers_pb2.ListContainersRequest(filters=[f'labels."{BUILD_LEASE_LABEL}"']),
        "build: listing build containers",
    )
    if not reply.containers:
        return
    leases = await client.call(
        client.leases.List, leases_pb2.ListRequest(), "build: listing leases"
    )
    alive = {lease.id for lease in leases.leases}
    for container in reply.containers:
        if container.labels.get(BUILD_LEASE_LABEL) not in alive:
            await remove_container(client, container.id)
            shutil.rmtree(fifo_root / container.id, ignore_errors=True)
