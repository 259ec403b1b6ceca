"""Images on one host: pull from a registry, import an OCI layout, push, list,
inspect and remove — blobs in containerd's content store, layers unpacked into
snapshots, one image record per name."""

from __future__ import annotations

import asyncio
import json
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containerd.services.containers.v1 import containers_pb2
from containerd.services.images.v1 import images_pb2

from runtime import content
from runtime.containerd_client import Containerd, ContainerdAlreadyExists, ContainerdNotFound
from runtime.reference import ImageReference, parse_reference
from runtime.registry import Manifest, RegistryClient, sha256_digest
from runtime.unpack import (
    INDEX_TYPES,
    Descriptor,
    ImageError,
    chain_ids,
    diff_ids,
    parse_manifest,
    pick_platform,
    unpack,
)

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
BlobSource = Callable[[Descriptor], AsyncIterator[bytes]]


@dataclass(frozen=True)
class ImageInfo:
    name: str
    target: Descriptor  # what the name points at: a manifest or an index
    manifest_digest: str
    config_descriptor: Descriptor
    config: dict[str, Any]
    layers: tuple[Descriptor, ...]
    chain_id: str  # the snapshot a container of this image starts from

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)


def normalize(image: str) -> str:
    return parse_reference(image).name


class ImageStore:
    def __init__(self, client: Containerd, registry: RegistryClient) -> None:
        self.client = client
        self.registry = registry
        self._pulls: dict[str, asyncio.Future[ImageInfo]] = {}
        self._blobs: dict[str, asyncio.Future[None]] = {}

    # ---- pull ---------------------------------------------------------------

    async def pull(self, image: str) -> ImageInfo:
        """Pull an image; concurrent pulls of one name share one download."""
        ref = parse_reference(image)
        running = self._pulls.get(ref.name)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[ImageInfo] = asyncio.get_running_loop().create_future()
        self._pulls[ref.name] = future
        try:
            info = await self._pull(ref)
            future.set_result(info)
            return info
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unshared failure is not logged
            raise
        finally:
            del self._pulls[ref.name]

    async def _pull(self, ref: ImageReference) -> ImageInfo:
        lease = await content.create_lease(self.client)
        try:
            top = await self.registry.get_manifest(ref)
            index: Manifest | None = None
            manifest = top
            if top.media_type in INDEX_TYPES:
                index = top
                chosen = pick_platform(top.body, ref.name)
                manifest = await self.registry.get_manifest(ref, chosen.digest)

            def from_registry(desc: Descriptor) -> AsyncIterator[bytes]:
                return self.registry.blob_chunks(ref, desc.digest, desc.size)

            info = await self._store(
                ref.name, manifest.media_type, manifest.body, index, from_registry, lease
            )
        finally:
            await content.delete_lease(self.client, lease)
        return info

    async def _store(
        self,
        name: str,
        media_type: str,
        manifest_body: bytes,
        index: Manifest | None,
        source: BlobSource,
        lease: str,
    ) -> ImageInfo:
        """Write config, layers, manifest (and index) with GC labels, unpack, and
        point the image record at the top."""
        parsed = parse_manifest(manifest_body, name)
        if await content.has_blob(self.client, parsed.config.digest):
            config_body = await content.read_blob(self.client, parsed.config.digest)
        else:
            config_body = b"".join([c async for c in source(parsed.config)])
        if sha256_digest(config_body) != parsed.config.digest:
            raise ImageError(f"image {name}: config digest mismatch")
        config = json.loads(config_body)
        ids = diff_ids(config, name)
        chains = chain_ids(ids)
        config_labels = {content.LABEL_SNAPSHOT_REF: chains[-1]} if chains else {}
        await content.write_bytes(
            self.client, parsed.config.digest, config_body, config_labels, lease
        )
        await asyncio.gather(
            *(
                self._fetch_layer(layer, diff_id, source, lease)
                for layer, diff_id in zip(parsed.layers, ids, strict=False)
            )
        )
        manifest_digest = sha256_digest(manifest_body)
        manifest_labels = {content.LABEL_CONFIG_REF: parsed.config.digest}
        for i, layer in enumerate(parsed.layers):
            manifest_labels[content.LABEL_LAYER_REF.format(i)] = layer.digest
        await content.write_bytes(
            self.client, manifest_digest, manifest_body, manifest_labels, lease
        )
        target = Descriptor(media_type, manifest_digest, len(manifest_body))
        if index is not None:
            await content.write_bytes(
                self.client,
                index.digest,
                index.body,
                {content.LABEL_MANIFEST_REF.format(0): manifest_digest},
                lease,
            )
            target = Descriptor(index.media_type, index.digest, len(index.body))
        top = await unpack(self.client, name, parsed.layers, ids, lease)
        await self._set_record(name, target)
        return ImageInfo(name, target, manifest_digest, parsed.config, config, parsed.layers, top)

    async def _fetch_layer(
        self, layer: Descriptor, diff_id: str, source: BlobSource, lease: str
    ) -> None:
        """Download a layer unless it is here already or being downloaded."""
        running = self._blobs.get(layer.digest)
        if running is not None:
            await asyncio.shield(running)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._blobs[layer.digest] = future
        try:
            labels = {content.LABEL_UNCOMPRESSED: diff_id}
            await content.write_blob(
                self.client, layer.digest, layer.size, source(layer), labels, lease
            )
            future.set_result(None)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._blobs[layer.digest]

    async def _set_record(self, name: str, target: Descriptor) -> None:
        await set_image_record(self.client, name, target)

    # ---- import ---------------------------------------------------------------

    async def import_blobs(
        self, name: str, manifest: Descriptor, blobs: Callable[[str], Awaitable[bytes]]
    ) -> ImageInfo:
        """Store an image whose blobs come from a local source (an OCI layout)."""

        async def source(desc: Descriptor) -> AsyncIterator[bytes]:
            data = await blobs(desc.digest)
            if sha256_digest(data) != desc.digest:
                raise ImageError(f"image {name}: blob {desc.digest} is corrupt")
            yield data

        body = await blobs(manifest.digest)
        if sha256_digest(body) != manifest.digest:
            raise ImageError(f"image {name}: manifest {manifest.digest} is corrupt")
        lease = await content.create_lease(self.client)
        try:
            return await self._store(
                normalize(name), manifest.media_type, body, None, source, lease
            )
        finally:
            await content.delete_lease(self.client, lease)

    # ---- records ---------------------------------------------------------------

    async def inspect(self, image: str) -> ImageInfo:
        name = normalize(image)
        try:
            reply = await self.client.call(
                self.client.images.Get, images_pb2.GetImageRequest(name=name), f"image {name}"
            )
        except ContainerdNotFound:
            raise ImageError(f"image {name} not found on this host") from None
        return await self._info(name, reply.image.target)

    async def _info(self, name: str, target_proto: Any) -> ImageInfo:
        target = Descriptor(target_proto.media_type, target_proto.digest, target_proto.size)
        manifest_digest = target.digest
        if target.media_type in INDEX_TYPES:
            body = await content.read_blob(self.client, target.digest)
            manifest_digest = pick_platform(body, name).digest
        parsed = parse_manifest(await content.read_blob(self.client, manifest_digest), name)
        config = json.loads(await content.read_blob(self.client, parsed.config.digest))
        chains = chain_ids(diff_ids(config, name))
        return ImageInfo(
            name,
            target,
            manifest_digest,
            parsed.config,
            config,
            parsed.layers,
            chains[-1] if chains else "",
        )

    async def list(self) -> list[ImageInfo]:
        reply = await self.client.call(
            self.client.images.List, images_pb2.ListImagesRequest(), "listing images"
        )
        return [await self._info(i.name, i.target) for i in reply.images]

    async def remove(self, image: str) -> None:
        """Remove an image's name; refused while a container uses the image."""
        name = normalize(image)
        await self.inspect(name)  # not found -> clear error
        users = await self.client.call(
            self.client.containers.List,
            containers_pb2.ListContainersRequest(filters=[f'image=="{name}"']),
            "listing containers",
        )
        if users.containers:
            ids = ", ".join(c.id[:12] for c in users.containers)
            raise ImageError(f"image {name} is in use by container(s) {ids}")
        await self.client.call(
            self.client.images.Delete,
            images_pb2.DeleteImageRequest(name=name, sync=True),
            f"removing image {name}",
        )

    # ---- push ---------------------------------------------------------------

    async def push(self, image: str, destination: str | None = None) -> ImageReference:
        """Push an image's blobs the registry lacks, then its manifest."""
        info = await self.inspect(image)
        ref = parse_reference(destination or info.name)
        for desc in (info.config_descriptor, *info.layers):
            await self.registry.push_blob(
                ref, desc.digest, desc.size, content.read_chunks(self.client, desc.digest)
            )
        body = await content.read_blob(self.client, info.manifest_digest)
        media_type = json.loads(body).get("mediaType") or info.target.media_type
        await self.registry.push_manifest(ref, Manifest(media_type, info.manifest_digest, body))
        return ref


async def set_image_record(client: Containerd, name: str, target: Descriptor) -> None:
    """Create the image's name, or point an existing one at the new target."""
    image = images_pb2.Image(name=name, target=target.to_proto())
    try:
        await client.call(
            client.images.Create,
            images_pb2.CreateImageRequest(image=image),
            f"creating image {name}",
        )
    except ContainerdAlreadyExists:
        request = images_pb2.UpdateImageRequest(image=image)
        request.update_mask.paths.append("target")
        await client.call(client.images.Update, request, f"updating image {name}")


async def import_layout(store: ImageStore, path: Path) -> list[ImageInfo]:
    """Import every image of an OCI image-layout tarball that names itself
    (annotation org.opencontainers.image.ref.name)."""
    try:
        tar = tarfile.open(path)  # noqa: SIM115 - closed by the `with tar` below
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"{path}: not an OCI image layout tarball ({exc})") from None
    with tar:

        async def blob(digest: str) -> bytes:
            algorithm, _, hexdigest = digest.partition(":")
            try:
                member = tar.extractfile(f"blobs/{algorithm}/{hexdigest}")
            except KeyError:
                member = None
            if member is None:
                raise ImageError(f"{path}: blob {digest} is missing")
            return member.read()

        try:
            index = json.loads(await _member(tar, path, "index.json"))
        except ValueError:
            raise ImageError(f"{path}: index.json is not JSON") from None
        imported = []
        for entry in index.get("manifests") or []:
            name = (entry.get("annotations") or {}).get(REF_NAME_ANNOTATION)
            if not name:
                raise ImageError(f"{path}: a manifest has no {REF_NAME_ANNOTATION} annotation")
            imported.append(await store.import_blobs(name, Descriptor.from_json(entry), blob))
    return imported


async def _member(tar: tarfile.TarFile, path: Path, name: str) -> bytes:
    try:
        member = tar.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise ImageError(f"{path}: {name} is missing")
    return member.read()
