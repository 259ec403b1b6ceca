"""Running a process inside a running container (health checks, `exec`): its
stdout and stderr come back through named pipes made before it starts, read
while it runs, and removed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

from containerd.services.containers.v1 import containers_pb2
from containerd.services.tasks.v1 import tasks_pb2
from google.protobuf import any_pb2

from runtime import oci_spec
from runtime.containerd_client import Containerd, ContainerdError
from runtime.protocol import ContainerRuntimeError, ExecResult

PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"


class ExecPipes:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.stdout = directory / "stdout"
        self.stderr = directory / "stderr"
        self._fds: list[int] = []
        self._tasks: list[asyncio.Task[bytes]] = []

    def __enter__(self) -> ExecPipes:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in (self.stdout, self.stderr):
            os.mkfifo(path, 0o600)
            # O_RDWR keeps the pipe open for reading before the shim opens the
            # write end, so neither side blocks on open.
            self._fds.append(os.open(path, os.O_RDWR | os.O_NONBLOCK))
        return self

    def start_reading(self) -> None:
        self._tasks = [asyncio.create_task(self._drain(fd)) for fd in self._fds]

    async def _drain(self, fd: int) -> bytes:
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    chunks.append(data)
        except asyncio.CancelledError:
            # We hold a write end too (O_RDWR), so EOF never comes: the caller
            # cancels once the process has exited; take what is left.
            with contextlib.suppress(BlockingIOError):
                while data := os.read(fd, 65536):
                    chunks.append(data)
            return b"".join(chunks)
        finally:
            loop.remove_reader(fd)

    async def collect(self) -> tuple[bytes, bytes]:
        """Everything written so far; call after the process exited."""
        await asyncio.sleep(0.01)  # let the shim's copy loop flush its last chunk
        for task in self._tasks:
            task.cancel()
        results = [await asyncio.gather(t, return_exceptions=True) for t in self._tasks]
        out = [r[0] if isinstance(r[0], bytes) else b"" for r in results]
        return out[0], out[1]

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.directory, ignore_errors=True)


async def run_exec(
    client: Containerd, container_id: str, argv: list[str], timeout: float, work_dir: Path
) -> ExecResult:
    """Exec `argv` with the container's user, env and cwd; kill it at `timeout`."""
    reply = await client.call(
        client.containers.Get,
        containers_pb2.GetContainerRequest(id=container_id),
        f"container {container_id}",
    )
    process = oci_spec.process_spec(json.loads(reply.container.spec.value), argv)
    exec_id = f"exec-{secrets.token_hex(6)}"
    what = f"container {container_id}: exec {argv[0] if argv else ''}"
    with ExecPipes(work_dir / exec_id) as pipes:
        request = tasks_pb2.ExecProcessRequest(
            container_id=container_id,
            exec_id=exec_id,
            stdout=str(pipes.stdout),
            stderr=str(pipes.stderr),
            terminal=False,
            spec=any_pb2.Any(type_url=PROCESS_TYPE, value=json.dumps(process).encode()),
        )
        await client.call(client.tasks.Exec, request, what)
        pipes.start_reading()
        # Wait is asked before Start, so a process that exits at once is not missed.
        waiting = asyncio.ensure_future(
            client.call(
                client.tasks.Wait,
                tasks_pb2.WaitRequest(container_id=container_id, exec_id=exec_id),
                what,
                timeout=None,
            )
        )
        try:
            start = tasks_pb2.StartRequest(container_id=container_id, exec_id=exec_id)
            await client.call(client.tasks.Start, start, what)
            try:
                status = await asyncio.wait_for(waiting, timeout)
            except TimeoutError:
                kill = tasks_pb2.KillRequest(container_id=container_id, exec_id=exec_id, signal=9)
                await client.call(client.tasks.Kill, kill, what)
                raise ContainerRuntimeError(f"{what}: timed out after {timeout}s") from None
            stdout, stderr = await pipes.collect()
            return ExecResult(int(status.exit_status), stdout, stderr)
        finally:
            if not waiting.done():
                waiting.cancel()
            with contextlib.suppress(ContainerdError):
                delete = tasks_pb2.DeleteProcessRequest(container_id=container_id, exec_id=exec_id)
                await client.call(client.tasks.DeleteProcess, delete, what)
