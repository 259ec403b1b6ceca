"""containerd's content store: write a blob from a stream, read it back, and the
garbage-collection labels that keep an image's blobs and snapshots alive."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
from containerd.services.content.v1 import content_pb2
from containerd.services.leases.v1 import leases_pb2

from runtime.containerd_client import (
    Containerd,
    ContainerdAlreadyExists,
    ContainerdError,
    ContainerdNotFound,
    translate,
)

CHUNK = 1024 * 1024

# containerd's GC follows these labels from an image's root (its target blob).
LABEL_UNCOMPRESSED = "containerd.io/uncompressed"
LABEL_CONFIG_REF = "containerd.io/gc.ref.content.config"
LABEL_LAYER_REF = "containerd.io/gc.ref.content.l.{}"
LABEL_MANIFEST_REF = "containerd.io/gc.ref.content.m.{}"
LABEL_SNAPSHOT_REF = "containerd.io/gc.ref.snapshot.overlayfs"


async def has_blob(client: Containerd, digest: str) -> bool:
    try:
        await client.call(
            client.content.Info, content_pb2.InfoRequest(digest=digest), f"content info {digest}"
        )
    except ContainerdNotFound:
        return False
    return True


async def write_blob(
    client: Containerd,
    digest: str,
    size: int,
    chunks: AsyncIterable[bytes],
    labels: dict[str, str] | None = None,
    lease: str | None = None,
) -> None:
    """Stream a blob into the content store; containerd checks size and digest
    at commit, so a corrupt stream is never committed. A blob already there
    only gets the labels."""
    if await has_blob(client, digest):
        if labels:
            await set_labels(client, digest, labels)
        return
    ref = f"shoal-{digest}-{secrets.token_hex(4)}"

    # An error of the source (a digest mismatch, a broken download) surfaces
    # from gRPC as a cancelled call; keep it to raise it in its own name.
    source_failure: list[Exception] = []

    async def requests() -> AsyncIterator[content_pb2.WriteContentRequest]:
        offset = 0
        try:
            async for data in chunks:
                for piece in _pieces(data):
                    yield content_pb2.WriteContentRequest(
                        action=content_pb2.WriteAction.WRITE,
                        ref=ref,
                        total=size,
                        expected=digest,
                        offset=offset,
                        data=piece,
                    )
                    offset += len(piece)
        except Exception as exc:
            source_failure.append(exc)
            raise
        yield content_pb2.WriteContentRequest(
            action=content_pb2.WriteAction.COMMIT,
            ref=ref,
            total=size,
            expected=digest,
            offset=offset,
            labels=labels or {},
        )

    try:
        call = client.content.Write(requests(), metadata=client.stream_metadata(lease))
        async for _ in call:
            pass
    except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
        await _abort(client, ref)
        if source_failure:
            raise source_failure[0] from None
        if isinstance(exc, asyncio.CancelledError):
            raise
        error = translate(exc, f"writing blob {digest}", client.socket)
        if isinstance(error, ContainerdAlreadyExists):
            return
        raise error from None
    except BaseException:
        await _abort(client, ref)
        raise


def _pieces(data: bytes) -> list[bytes]:
    return [data[start : start + CHUNK] for start in range(0, len(data), CHUNK)]


async def _abort(client: Containerd, ref: str) -> None:
    with contextlib.suppress(ContainerdError):  # nothing was ingested under this ref
        await client.call(client.content.Abort, content_pb2.AbortRequest(ref=ref), "abort")


async def write_bytes(
    client: Containerd,
    digest: str,
    data: bytes,
    labels: dict[str, str] | None = None,
    lease: str | None = None,
) -> None:
    async def one() -> AsyncIterator[bytes]:
        yield data

    await write_blob(client, digest, len(data), one(), labels, lease)


async def read_chunks(client: Containerd, digest: str) -> AsyncIterator[bytes]:
    try:
        call = client.content.Read(
            content_pb2.ReadContentRequest(digest=digest), metadata=client.metadata
        )
        async for reply in call:
            yield reply.data
    except grpc.aio.AioRpcError as exc:
        raise translate(exc, f"reading blob {digest}", client.socket) from None


async def read_blob(client: Containerd, digest: str) -> bytes:
    return b"".join([chunk async for chunk in read_chunks(client, digest)])


async def set_labels(client: Containerd, digest: str, labels: dict[str, str]) -> None:
    info = content_pb2.Info(digest=digest, labels=labels)
    mask = [f"labels.{k}" for k in labels]
    request = content_pb2.UpdateRequest(info=info)
    request.update_mask.paths.extend(mask)
    await client.call(client.content.Update, request, f"labelling blob {digest}")


async def create_lease(client: Containerd, minutes: int = 30) -> str:
    """A lease keeps blobs and snapshots of an unfinished pull from the GC;
    it expires by itself if we die before deleting it."""
    expire = (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lease_id = f"shoal-pull-{secrets.token_hex(6)}"
    request = leases_pb2.CreateRequest(id=lease_id, labels={"containerd.io/gc.expire": expire})
    await client.call(client.leases.Create, request, "creating a lease")
    return lease_id


async def delete_lease(client: Containerd, lease_id: str) -> None:
    with contextlib.suppress(ContainerdNotFound):
        await client.call(
            client.leases.Delete, leases_pb2.DeleteRequest(id=lease_id), "deleting a lease"
        )
