"""Image manifests and their layers: parsing, chain IDs, and unpacking layers
into chained overlayfs snapshots with containerd's Diff service."""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from containerd.services.diff.v1 import diff_pb2
from containerd.services.snapshots.v1 import snapshots_pb2
from containerd.types import descriptor_pb2

from runtime.containerd_client import (
    SNAPSHOTTER,
    Containerd,
    ContainerdAlreadyExists,
    ContainerdError,
    ContainerdNotFound,
)
from runtime.registry import sha256_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)


class ImageError(RuntimeError):
    """An image that cannot be used; the message names it."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        return cls(str(data["mediaType"]), str(data["digest"]), int(data["size"]))

    def to_proto(self) -> descriptor_pb2.Descriptor:
        return descriptor_pb2.Descriptor(
            media_type=self.media_type, digest=self.digest, size=self.size
        )


@dataclass(frozen=True)
class ParsedManifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]


def parse_manifest(body: bytes, image: str) -> ParsedManifest:
    try:
        data = json.loads(body)
        config = Descriptor.from_json(data["config"])
        layers = tuple(Descriptor.from_json(layer) for layer in data.get("layers") or [])
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"image {image}: malformed manifest ({exc})") from None
    return ParsedManifest(config, layers)


def pick_platform(body: bytes, image: str, os: str = "linux", arch: str = "amd64") -> Descriptor:
    """The manifest for os/arch from an OCI index or Docker manifest list."""
    try:
        entries = json.loads(body).get("manifests") or []
    except ValueError:
        raise ImageError(f"image {image}: malformed index") from None
    for entry in entries:
        platform = entry.get("platform") or {}
        if platform.get("os") == os and platform.get("architecture") == arch:
            return Descriptor.from_json(entry)
    raise ImageError(f"image {image}: no manifest for {os}/{arch}")


def diff_ids(config: dict[str, Any], image: str) -> list[str]:
    ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(ids, list):
        raise ImageError(f"image {image}: config has no rootfs.diff_ids")
    return [str(i) for i in ids]


def chain_ids(layer_diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: the identity of a layer stacked on all the ones below it."""
    chains: list[str] = []
    for diff_id in layer_diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            chains.append(sha256_digest(f"{chains[-1]} {diff_id}".encode()))
    return chains


async def snapshot_exists(client: Containerd, key: str) -> bool:
    request = snapshots_pb2.StatSnapshotRequest(snapshotter=SNAPSHOTTER, key=key)
    try:
        await client.call(client.snapshots.Stat, request, f"snapshot {key}")
    except ContainerdNotFound:
        return False
    return True


async def unpack(
    client: Containerd,
    image: str,
    layers: tuple[Descriptor, ...],
    layer_diff_ids: list[str],
    lease: str | None,
) -> str:
    """Apply each layer on top of the one below; return the top chain ID.
    Layers already unpacked (by this image or another) are skipped."""
    if len(layers) != len(layer_diff_ids):
        raise ImageError(f"image {image}: {len(layers)} layers but {len(layer_diff_ids)} diff_ids")
    chains = chain_ids(layer_diff_ids)
    parent = ""
    for layer, diff_id, chain in zip(layers, layer_diff_ids, chains, strict=True):
        if not await snapshot_exists(client, chain):
            await _apply_layer(client, image, layer, diff_id, chain, parent, lease)
        parent = chain
    return parent


async def _apply_layer(
    client: Containerd,
    image: str,
    layer: Descriptor,
    diff_id: str,
    chain: str,
    parent: str,
    lease: str | None,
) -> None:
    key = f"extract-{secrets.token_hex(6)} {chain}"
    prepare = snapshots_pb2.PrepareSnapshotRequest(snapshotter=SNAPSHOTTER, key=key, parent=parent)
    reply = await client.call(client.snapshots.Prepare, prepare, f"preparing {chain}", lease=lease)
    try:
        apply = diff_pb2.ApplyRequest(diff=layer.to_proto(), mounts=list(reply.mounts))
        applied = await client.call(
            client.diff.Apply,
            apply,
            f"image {image}: applying layer {layer.digest}",
            timeout=600,
            lease=lease,
        )
        if applied.applied.digest != diff_id:
            raise ImageError(
                f"image {image}: layer {layer.digest} unpacked to "
                f"{applied.applied.digest}, config says {diff_id}"
            )
        commit = snapshots_pb2.CommitSnapshotRequest(snapshotter=SNAPSHOTTER, name=chain, key=key)
        try:
            await client.call(client.snapshots.Commit, commit, f"committing {chain}", lease=lease)
            return
        except ContainerdAlreadyExists:
            pass  # another pull unpacked the same layer meanwhile: use theirs
    except BaseException:
        await _remove_snapshot(client, key)
        raise
    await _remove_snapshot(client, key)


async def _remove_snapshot(client: Containerd, key: str) -> None:
    request = snapshots_pb2.RemoveSnapshotRequest(snapshotter=SNAPSHOTTER, key=key)
    with contextlib.suppress(ContainerdError):  # already gone
        await client.call(client.snapshots.Remove, request, f"removing snapshot {key}")
