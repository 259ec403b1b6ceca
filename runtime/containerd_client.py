"""Connections to one host's containerd over its gRPC socket.

`Containerd` holds one channel and the service stubs, sends the containerd
namespace with every call, and turns gRPC status codes into our exceptions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from containerd.services.containers.v1 import containers_pb2_grpc
from containerd.services.content.v1 import content_pb2_grpc
from containerd.services.diff.v1 import diff_pb2_grpc
from containerd.services.images.v1 import images_pb2_grpc
from containerd.services.leases.v1 import leases_pb2_grpc
from containerd.services.snapshots.v1 import snapshots_pb2_grpc
from containerd.services.tasks.v1 import tasks_pb2_grpc
from containerd.services.version.v1 import version_pb2_grpc
from google.protobuf import empty_pb2

DEFAULT_NAMESPACE = "shoal"
SNAPSHOTTER = "overlayfs"
_MAX_MESSAGE = 64 * 1024 * 1024


class ContainerdError(RuntimeError):
    """containerd refused or failed a call; the message says which and why."""


class ContainerdUnavailable(ContainerdError, ConnectionError):
    """containerd does not answer on the socket; the message names the socket."""


class ContainerdNotFound(ContainerdError):
    pass


class ContainerdAlreadyExists(ContainerdError):
    pass


class ContainerdPreconditionFailed(ContainerdError):
    pass


_CODES: dict[grpc.StatusCode, type[ContainerdError]] = {
    grpc.StatusCode.UNAVAILABLE: ContainerdUnavailable,
    grpc.StatusCode.NOT_FOUND: ContainerdNotFound,
    grpc.StatusCode.ALREADY_EXISTS: ContainerdAlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: ContainerdPreconditionFailed,
}


def translate(exc: grpc.aio.AioRpcError, what: str, socket: Path) -> ContainerdError:
    kind = _CODES.get(exc.code(), ContainerdError)
    if kind is ContainerdUnavailable:
        return kind(f"containerd at {socket} is not answering ({what}): {exc.details()}")
    return kind(f"{what}: {exc.details() or exc.code().name}")


class Containerd:
    def __init__(self, socket: Path, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.socket = socket
        self.namespace = namespace
        self.metadata: tuple[tuple[str, str], ...] = (("containerd-namespace", namespace),)
        self.channel = grpc.aio.insecure_channel(
            f"unix://{socket}",
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        self.content = content_pb2_grpc.ContentStub(self.channel)
        self.images = images_pb2_grpc.ImagesStub(self.channel)
        self.snapshots = snapshots_pb2_grpc.SnapshotsStub(self.channel)
        self.diff = diff_pb2_grpc.DiffStub(self.channel)
        self.containers = containers_pb2_grpc.ContainersStub(self.channel)
        self.tasks = tasks_pb2_grpc.TasksStub(self.channel)
        self.leases = leases_pb2_grpc.LeasesStub(self.channel)
        self.version = version_pb2_grpc.VersionStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def call(
        self,
        method: Callable[..., Awaitable[Any]],
        request: Any,
        what: str,
        *,
        timeout: float | None = 60.0,
        lease: str | None = None,
    ) -> Any:
        """One unary call with the namespace (and lease) attached."""
        metadata = self.metadata if lease is None else (*self.metadata, ("containerd-lease", lease))
        try:
            return await method(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise translate(exc, what, self.socket) from None

    def stream_metadata(self, lease: str | None = None) -> tuple[tuple[str, str], ...]:
        if lease is None:
            return self.metadata
        return (*self.metadata, ("containerd-lease", lease))

    async def server_version(self, timeout: float = 2.0) -> str:
        reply = await self.call(self.version.Version, empty_pb2.Empty(), "version", timeout=timeout)
        return str(reply.version)


async def fetch_version(socket: Path, timeout: float = 2.0) -> str:
    """containerd's version string, or ContainerdUnavailable."""
    if not socket.exists():
        raise ContainerdUnavailable(f"containerd socket {socket} does not exist")
    client = Containerd(socket)
    try:
        return await client.server_version(timeout)
    except ContainerdError as exc:
        raise ContainerdUnavailable(str(exc)) from None
    finally:
        await client.close()
