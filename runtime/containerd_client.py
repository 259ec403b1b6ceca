"""Connections to one host's containerd over its gRPC socket."""

from __future__ import annotations

from pathlib import Path

import grpc
from containerd.services.version.v1 import version_pb2_grpc
from google.protobuf import empty_pb2


class ContainerdUnavailable(ConnectionError):
    """containerd does not answer on the socket; the message names the socket."""


async def fetch_version(socket: Path, timeout: float = 2.0) -> str:
    """containerd's version string, or ContainerdUnavailable."""
    if not socket.exists():
        raise ContainerdUnavailable(f"containerd socket {socket} does not exist")
    async with grpc.aio.insecure_channel(f"unix://{socket}") as channel:
        stub = version_pb2_grpc.VersionStub(channel)
        try:
            reply = await stub.Version(empty_pb2.Empty(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise ContainerdUnavailable(
                f"containerd at {socket} is not answering: {exc.details() or exc.code().name}"
            ) from None
    return str(reply.version)
