"""A small OCI image built offline from Debian's statically linked busybox
(package busybox-static), so the lab and tests need no internet.

Everything is deterministic (fixed mtimes and owners, sorted entries, no
timestamps in the config, gzip without a timestamp): the same busybox binary
gives byte-identical blobs and so the same manifest digest on every run.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.registry import sha256_digest

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX = "bin/busybox"
APP_UID = 1000

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    f"app:x:{APP_UID}:{APP_UID}:app:/home/app:/bin/sh\n"
)
GROUP = f"root:x:0:\nnogroup:x:65534:\napp:x:{APP_UID}:\n"

# path -> (mode, uid, gid); parents of applet links are added as 0755 root.
DIRECTORIES: dict[str, tuple[int, int, int]] = {
    "bin": (0o755, 0, 0),
    "sbin": (0o755, 0, 0),
    "usr": (0o755, 0, 0),
    "usr/bin": (0o755, 0, 0),
    "usr/sbin": (0o755, 0, 0),
    "etc": (0o755, 0, 0),
    "tmp": (0o1777, 0, 0),
    "root": (0o700, 0, 0),
    "proc": (0o555, 0, 0),
    "sys": (0o555, 0, 0),
    "dev": (0o755, 0, 0),
    "var": (0o755, 0, 0),
    "home": (0o755, 0, 0),
    "home/app": (0o755, APP_UID, APP_UID),
    "run": (0o755, 0, 0),
}

# ELF e_machine -> OCI (Go) architecture: the image is for the binary's CPU.
_ELF_ARCHITECTURES = {0x03: "386", 0x28: "arm", 0x3E: "amd64", 0xB7: "arm64", 0xF3: "riscv64"}


@dataclass(frozen=True)
class OciImage:
    manifest: bytes  # OCI image manifest JSON
    manifest_digest: str  # "sha256:..."
    config_digest: str
    blobs: dict[str, bytes]  # digest -> bytes, for the config and every layer


class SeedImageError(Exception):
    pass


def _json(value: Any) -> bytes:
    # Sorted and compact so the bytes, and so the digests, never vary.
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _architecture(binary: bytes) -> str:
    if binary[:4] != b"\x7fELF" or len(binary) < 20:
        raise SeedImageError("busybox is not an ELF binary")
    # EI_DATA (byte 5) is 1 for little-endian; e_machine is at offset 18.
    machine = int.from_bytes(binary[18:20], "little" if binary[5] == 1 else "big")
    try:
        return _ELF_ARCHITECTURES[machine]
    except KeyError:
        raise SeedImageError(f"unknown ELF machine {machine:#x} for busybox") from None


def _applets(busybox: Path) -> list[str]:
    """Install paths of busybox's applets (e.g. "bin/sh"), from the binary."""
    try:
        listing = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise SeedImageError(f"cannot list busybox applets: {error}") from error
    applets = {line.strip().strip("/") for line in listing.splitlines()}
    applets.discard("")
    applets.discard(BUSYBOX)
    return sorted(applets)


def _entry(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def layer_tar(busybox: Path = Path("/bin/busybox")) -> tuple[bytes, str]:
    """The uncompressed root filesystem tar, and the busybox architecture."""
    try:
        binary = busybox.read_bytes()
    except OSError as error:
        raise SeedImageError(
            f"cannot read {busybox} (install Debian's busybox-static): {error}"
        ) from error
    architecture = _architecture(binary)
    entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    for name, (mode, uid, gid) in DIRECTORIES.items():
        entries[name] = (_entry(name, tarfile.DIRTYPE, mode, uid, gid), None)
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        entries[name] = (_entry(name, tarfile.REGTYPE, 0o644), text.encode())
    entries[BUSYBOX] = (_entry(BUSYBOX, tarfile.REGTYPE, 0o755), binary)
    for applet in _applets(busybox):
        parent = posixpath.dirname(applet)
        while parent and parent not in entries:
            entries[parent] = (_entry(parent, tarfile.DIRTYPE, 0o755), None)
            parent = posixpath.dirname(parent)
        link = _entry(applet, tarfile.SYMTYPE, 0o777)
        # Relative, so the link also resolves in an unpacked rootfs on the host.
        link.linkname = posixpath.relpath(BUSYBOX, posixpath.dirname(applet) or ".")
        entries.setdefault(applet, (link, None))
    raw = io.BytesIO()
    # USTAR: no PAX headers (which could carry varying metadata); every path
    # here fits its limits, and tarfile raises if one ever does not.
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        # Sorted, so each directory comes before what it contains.
        for name in sorted(entries):
            info, data = entries[name]
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return raw.getvalue(), architecture


def busybox_image(busybox: Path = Path("/bin/busybox")) -> OciImage:
    tar, architecture = layer_tar(busybox)
    # gzip output also depends on the zlib build; fixed level and mtime=0 make
    # it repeatable on a given host.
    layer = gzip.compress(tar, compresslevel=9, mtime=0)
    config = _json(
        {
            "architecture": architecture,
            "os": "linux",
            "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
            "history": [{"created_by": "shoal seed image from busybox-static"}],
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": LAYER_MEDIA_TYPE, "digest": sha256_digest(layer), "size": len(layer)}
            ],
        }
    )
    return OciImage(
        manifest=manifest,
        manifest_digest=sha256_digest(manifest),
        config_digest=sha256_digest(config),
        blobs={sha256_digest(config): config, sha256_digest(layer): layer},
    )


def write_oci_layout(image: OciImage, ref_name: str, destination: Path) -> None:
    """Writes `image` as an OCI image-layout tarball (what `ctr images import`
    takes), tagged `ref_name` in index.json."""
    index = _json(
        {
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [
                {
                    "mediaType": MANIFEST_MEDIA_TYPE,
                    "digest": image.manifest_digest,
                    "size": len(image.manifest),
                    "annotations": {REF_NAME_ANNOTATION: ref_name},
                }
            ],
        }
    )
    files: dict[str, bytes] = {
        "oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
        "index.json": index,
    }
    for digest, data in {**image.blobs, image.manifest_digest: image.manifest}.items():
        algorithm, _, hexdigest = digest.partition(":")
        files[f"blobs/{algorithm}/{hexdigest}"] = data
    directories = sorted({posixpath.dirname(n) for n in files if "/" in n} | {"blobs"})
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    # Written aside and renamed, so a reader never sees half a tarball.
    with tarfile.open(partial, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in directories:
            tar.addfile(_entry(name, tarfile.DIRTYPE, 0o755))
        for name in sorted(files):
            info = _entry(name, tarfile.REGTYPE, 0o644)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    partial.replace(destination)
