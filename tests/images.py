"""Small, unique OCI images made inside a test, and pushing them to a registry."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import aiohttp

from runtime.reference import parse_reference
from runtime.registry import Manifest, RegistryClient, sha256_digest
from runtime.seed_image import MANIFEST_MEDIA_TYPE, OciImage

_digest = sha256_digest


def tiny_image(files: dict[str, bytes], cmd: list[str] | None = None) -> OciImage:
    """A one-layer image holding `files`; not runnable unless layered on busybox."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layer_tar = raw.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": cmd or ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return OciImage(
        manifest=manifest,
        manifest_digest=_digest(manifest),
        config_digest=_digest(config),
        blobs={_digest(config): config, _digest(layer): layer},
    )


async def push_image(registry: str, name: str, image: OciImage) -> None:
    ref = parse_reference(name)
    async with aiohttp.ClientSession() as session:
        client = RegistryClient(session, frozenset({registry}))
        for digest, data in image.blobs.items():
            await client.push_blob(ref, digest, len(data), data)
        await client.push_manifest(
            ref, Manifest(MANIFEST_MEDIA_TYPE, image.manifest_digest, image.manifest)
        )
