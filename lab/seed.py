"""Seeds the lab's registry with a small base image, `library/busybox:latest`,
built from Debian's busybox-static, so tests and the demo need no internet."""

from __future__ import annotations

import asyncio

import aiohttp

from lab.spec import LabSpec
from runtime.reference import parse_reference
from runtime.registry import Manifest, RegistryClient
from runtime.seed_image import MANIFEST_MEDIA_TYPE, busybox_image

BUSYBOX_REPOSITORY = "library/busybox:latest"


def busybox_reference(spec: LabSpec) -> str:
    return f"{spec.registry_address}/{BUSYBOX_REPOSITORY}"


async def _push_busybox(spec: LabSpec) -> None:
    image = busybox_image()
    ref = parse_reference(busybox_reference(spec))
    async with aiohttp.ClientSession() as session:
        registry = RegistryClient(session, frozenset({spec.registry_address}))
        for digest, data in image.blobs.items():
            await registry.push_blob(ref, digest, len(data), data)
        await registry.push_manifest(
            ref, Manifest(MANIFEST_MEDIA_TYPE, image.manifest_digest, image.manifest)
        )


def seed_registry(spec: LabSpec) -> None:
    asyncio.run(_push_busybox(spec))
