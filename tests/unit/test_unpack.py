"""Manifest parsing, platform choice and chain IDs, without containerd."""

from __future__ import annotations

import hashlib
import json

import pytest

from runtime.unpack import ImageError, chain_ids, diff_ids, parse_manifest, pick_platform

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def test_chain_ids_follow_the_oci_definition() -> None:
    second = "sha256:" + hashlib.sha256(f"{A} {B}".encode()).hexdigest()
    third = "sha256:" + hashlib.sha256(f"{second} {C}".encode()).hexdigest()
    assert chain_ids([A, B, C]) == [A, second, third]
    assert chain_ids([]) == []


def test_pick_platform_takes_linux_amd64_from_an_index() -> None:
    index = json.dumps({"manifests": [
        {"mediaType": "m", "digest": A, "size": 1,
         "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": "m", "digest": B, "size": 2,
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()  # fmt: skip
    assert pick_platform(index, "img").digest == B
    with pytest.raises(ImageError, match="img: no manifest for linux/s390x"):
        pick_platform(index, "img", arch="s390x")


def test_malformed_manifests_and_configs_name_the_image() -> None:
    with pytest.raises(ImageError, match="image img: malformed manifest"):
        parse_manifest(b'{"layers": []}', "img")
    with pytest.raises(ImageError, match=r"image img: config has no rootfs\.diff_ids"):
        diff_ids({"rootfs": {}}, "img")
    manifest = parse_manifest(json.dumps({
        "config": {"mediaType": "c", "digest": A, "size": 3},
        "layers": [{"mediaType": "l", "digest": B, "size": 4}],
    }).encode(), "img")  # fmt: skip
    assert manifest.config.digest == A and manifest.layers[0].size == 4
