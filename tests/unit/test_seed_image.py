"""The offline busybox seed image: deterministic, self-consistent, and
importable as an OCI image-layout tarball."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import tarfile
from pathlib import Path
from typing import Any

import pytest

from runtime.seed_image import (
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    OciImage,
    SeedImageError,
    busybox_image,
    write_oci_layout,
)

BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="module")
def image() -> OciImage:
    # Not a skip: busybox-static is a declared dependency of the project.
    assert BUSYBOX.is_file(), f"{BUSYBOX} is missing: install Debian's busybox-static"
    return busybox_image(BUSYBOX)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_of(image: OciImage) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(image.manifest)
    return manifest


def layer_tar(image: OciImage) -> bytes:
    [layer] = manifest_of(image)["layers"]
    return gzip.decompress(image.blobs[layer["digest"]])


def test_the_same_busybox_gives_the_same_image(image: OciImage) -> None:
    again = busybox_image(BUSYBOX)
    assert again.manifest_digest == image.manifest_digest
    assert again.blobs == image.blobs


def test_digests_and_descriptors_match_the_blobs(image: OciImage) -> None:
    assert image.manifest_digest == sha256(image.manifest)
    for digest, data in image.blobs.items():
        assert sha256(data) == digest
    manifest = manifest_of(image)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE
    assert manifest["config"]["digest"] == image.config_digest
    assert manifest["config"]["size"] == len(image.blobs[image.config_digest])
    [layer] = manifest["layers"]
    assert layer["mediaType"] == LAYER_MEDIA_TYPE
    assert layer["size"] == len(image.blobs[layer["digest"]])
    assert set(image.blobs) == {image.config_digest, layer["digest"]}


def test_config_is_runnable_and_names_the_uncompressed_layer(image: OciImage) -> None:
    config = json.loads(image.blobs[image.config_digest])
    # The image is for busybox's CPU, which on a Debian host is the host's.
    expected = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())
    assert config["architecture"] == expected
    assert config["os"] == "linux"
    assert config["config"]["Cmd"] == ["sh"]
    assert config["config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256(layer_tar(image))]}
    assert len(config["history"]) == 1
    assert "created" not in config
    assert all("created" not in h for h in config["history"])


def test_layer_holds_busybox_its_applets_and_users(image: OciImage) -> None:
    with tarfile.open(fileobj=io.BytesIO(layer_tar(image))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        busybox = members["bin/busybox"]
        assert busybox.isfile() and busybox.mode == 0o755
        assert busybox.size == BUSYBOX.stat().st_size
        sh = members["bin/sh"]
        assert sh.issym() and sh.linkname in ("busybox", "/bin/busybox")
        assert members["usr/bin/env"].issym()
        assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
        assert members["root"].mode == 0o700
        app = members["home/app"]
        assert app.isdir() and (app.uid, app.gid) == (1000, 1000)
        for name in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "var"):
            assert members[name].isdir(), name
        assert members["run"].isdir()
        for member in members.values():
            assert member.mtime == 0 and member.uname == "" and member.gname == ""
        passwd = tar.extractfile("etc/passwd")
        group = tar.extractfile("etc/group")
        assert passwd is not None and group is not None
        users = {line.split(":")[0]: line.split(":") for line in passwd.read().decode().split()}
        groups = {line.split(":")[0]: line.split(":") for line in group.read().decode().split()}
    assert users["app"][2:4] == ["1000", "1000"]
    assert users["app"][5:] == ["/home/app", "/bin/sh"]
    assert users["root"][2] == "0" and users["nobody"][2] == "65534"
    assert groups["app"][2] == "1000" and groups["nogroup"][2] == "65534"
    assert groups["root"][2] == "0"
    # Parents always precede what they contain, so any unpacker can apply it.
    names = [m.name for m in members.values()]
    for index, name in enumerate(names):
        parent = name.rpartition("/")[0]
        assert not parent or names.index(parent) < index, name


def test_gzip_layer_has_no_timestamp(image: OciImage) -> None:
    [layer] = manifest_of(image)["layers"]
    blob = image.blobs[layer["digest"]]
    assert blob[:2] == b"\x1f\x8b"
    assert blob[4:8] == b"\0\0\0\0"  # MTIME


def test_oci_layout_tarball_points_at_the_manifest(image: OciImage, tmp_path: Path) -> None:
    destination = tmp_path / "out" / "busybox.tar"
    write_oci_layout(image, "example.test/seed/busybox:1", destination)
    with tarfile.open(destination) as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            handle = tar.extractfile(files[name])
            assert handle is not None
            return handle.read()

        assert json.loads(read("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads(read("index.json"))
        [descriptor] = index["manifests"]
        assert descriptor["mediaType"] == MANIFEST_MEDIA_TYPE
        assert descriptor["digest"] == image.manifest_digest
        assert descriptor["size"] == len(image.manifest)
        annotations = descriptor["annotations"]
        assert annotations["org.opencontainers.image.ref.name"] == "example.test/seed/busybox:1"
        manifest_path = "blobs/sha256/" + image.manifest_digest.removeprefix("sha256:")
        assert read(manifest_path) == image.manifest
        for digest, data in image.blobs.items():
            assert read("blobs/sha256/" + digest.removeprefix("sha256:")) == data
        assert len(files) == 2 + 1 + len(image.blobs)
    assert not list(destination.parent.glob("*.partial"))


def test_a_missing_busybox_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SeedImageError, match="busybox-static"):
        busybox_image(tmp_path / "busybox")
