"""The image a build has made so far: its config and its layers, the
snapshots under them, and, at the end, the image itself in containerd's
content store: the config, an OCI manifest with the GC labels images.py
uses, and the tag's image record pointing at them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime import build_config as cfg
from runtime import content
from runtime.build_cache import CachedLayer
from runtime.containerd_client import Containerd
from runtime.images import set_image_record
from runtime.registry import sha256_digest
from runtime.unpack import OCI_MANIFEST, Descriptor, chain_ids, unpack

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class ImageState:
    config: dict[str, Any]
    layers: tuple[CachedLayer, ...]

    @property
    def id(self) -> str:
        return cfg.config_digest(self.config)

    @property
    def chain(self) -> str:
        chains = chain_ids([layer.diff_id for layer in self.layers])
        return chains[-1] if chains else ""


async def unpack_layers(client: Containerd, state: ImageState, lease: str) -> None:
    """Snapshots for every layer so far (a cached layer may have none)."""
    if not state.layers:
        return
    descriptors = tuple(Descriptor(x.media_type, x.digest, x.size) for x in state.layers)
    ids = [x.diff_id for x in state.layers]
    await unpack(client, "(build)", descriptors, ids, lease)


async def write_image(client: Containerd, state: ImageState, name: str, lease: str) -> str:
    """The image stored and tagged `name`; its manifest's digest."""
    await unpack_layers(client, state, lease)  # a container of it starts from the top snapshot
    config = cfg.canonical(state.config)
    config_labels = {content.LABEL_SNAPSHOT_REF: state.chain} if state.layers else {}
    await content.write_bytes(client, state.id, config, config_labels, lease)
    manifest = cfg.canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": state.id, "size": len(config)},
            "layers": [
                {"mediaType": x.media_type, "digest": x.digest, "size": x.size}
                for x in state.layers
            ],
        }
    )
    digest = sha256_digest(manifest)
    labels = {content.LABEL_CONFIG_REF: state.id}
    for i, layer in enumerate(state.layers):
        labels[content.LABEL_LAYER_REF.format(i)] = layer.digest
    await content.write_bytes(client, digest, manifest, labels, lease)
    await set_image_record(client, name, Descriptor(OCI_MANIFEST, digest, len(manifest)))
    return digest
