"""Images on a lab host: shared pulls, push, import, list, inspect, remove."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from api.container_spec import ContainerSpec
from lab.configs import runtime_config
from lab.seed import busybox_reference
from lab.spec import LabSpec
from runtime.driver import ContainerdRuntime
from runtime.protocol import ContainerConfig
from runtime.reference import parse_reference
from runtime.registry import RegistryClient
from runtime.seed_image import busybox_image, write_oci_layout
from runtime.unpack import ImageError

pytestmark = pytest.mark.lab


@pytest.fixture
async def rt(lab2: LabSpec) -> AsyncIterator[ContainerdRuntime]:
    async with ContainerdRuntime(runtime_config(lab2, lab2.host(2))) as runtime:
        yield runtime
        for container in await runtime.list_containers():
            await runtime.delete(container.id, remove_logs=True)
        for image in await runtime.list_images():
            await runtime.remove_image(image.name)


class CountingRegistry(RegistryClient):
    """The real client, counting what goes over the wire."""

    def __init__(self, session: aiohttp.ClientSession, insecure: frozenset[str]) -> None:
        super().__init__(session, insecure)
        self.blob_downloads: list[str] = []
        self.uploads: list[str] = []

    async def blob_chunks(self, ref, digest, size=None):  # type: ignore[no-untyped-def]
        self.blob_downloads.append(digest)  # counted once the download really starts
        async for chunk in super().blob_chunks(ref, digest, size):
            yield chunk

    async def _has_blob(self, ref, digest, push):  # type: ignore[no-untyped-def]
        present = await super()._has_blob(ref, digest, push)
        if push and not present:
            self.uploads.append(digest)  # push_blob uploads exactly these
        return present


async def counting(rt: ContainerdRuntime, lab: LabSpec) -> CountingRegistry:
    assert rt.images is not None and rt._session is not None
    registry = CountingRegistry(rt._session, frozenset({lab.registry_address}))
    rt.images.registry = registry
    return registry


async def test_concurrent_pulls_share_one_download_and_present_layers_are_not_fetched(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    registry = await counting(rt, lab2)
    image = busybox_reference(lab2)
    results = await asyncio.gather(*(rt.pull(image) for _ in range(5)))
    assert len({r.digest for r in results}) == 1
    info = await rt.images.inspect(image)  # type: ignore[union-attr]
    expected = sorted([info.config_descriptor.digest, info.layers[0].digest])
    assert sorted(registry.blob_downloads) == expected  # config and layer, each once
    await rt.pull(image)
    assert sorted(registry.blob_downloads) == expected  # all present: nothing fetched again


async def test_push_sends_only_missing_blobs_then_another_host_runs_it(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    registry = await counting(rt, lab2)
    await rt.pull(busybox_reference(lab2))
    target = f"{lab2.registry_address}/test/copy:{secrets.token_hex(3)}"
    assert rt.images is not None
    await rt.images.push(busybox_reference(lab2), target)
    first_uploads = len(registry.uploads)
    assert first_uploads == 2  # config and layer: new to this repository
    await rt.images.push(busybox_reference(lab2), target)
    assert len(registry.uploads) == first_uploads  # nothing missing the second time
    manifest = await registry.get_manifest(parse_reference(target))
    assert manifest.digest == (await rt.inspect_image(busybox_reference(lab2))).digest

    async with ContainerdRuntime(runtime_config(lab2, lab2.host(1))) as other:
        await other.pull(target)
        cid = f"c{secrets.token_hex(6)}"
        spec = ContainerSpec(image=target, command=["sh", "-c", "test -x /bin/busybox"])
        await other.create(ContainerConfig(cid, spec))
        await other.start(cid)
        assert (await other.wait(cid)).exit_code == 0
        await other.delete(cid, remove_logs=True)
        await other.remove_image(target)


async def test_import_an_oci_layout_tarball_and_run_it(
    rt: ContainerdRuntime, tmp_path: Path
) -> None:
    layout = tmp_path / "busybox.tar"
    write_oci_layout(busybox_image(), "example.test/imported/busybox:1", layout)
    imported = await rt.import_image(layout)
    assert [i.name for i in imported] == ["example.test/imported/busybox:1"]
    cid = f"c{secrets.token_hex(6)}"
    await rt.create(
        ContainerConfig(
            cid, ContainerSpec(image="example.test/imported/busybox:1", command=["true"])
        )
    )
    await rt.start(cid)
    assert (await rt.wait(cid)).exit_code == 0


async def test_list_inspect_and_remove_refused_while_in_use(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    assert image in [i.name for i in await rt.list_images()]
    info = await rt.inspect_image(image)
    assert info.config["config"]["Cmd"] == ["sh"]  # type: ignore[index]
    cid = f"c{secrets.token_hex(6)}"
    await rt.create(ContainerConfig(cid, ContainerSpec(image=image, command=["true"])))
    with pytest.raises(ImageError, match="in use"):
        await rt.remove_image(image)
    await rt.delete(cid)
    await rt.remove_image(image)
    assert image not in [i.name for i in await rt.list_images()]
    with pytest.raises(ImageError, match="not found"):
        await rt.inspect_image(image)
