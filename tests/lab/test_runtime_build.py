"""The image builder on a lab host: layers, push and run elsewhere, the build
cache, failing steps, and what a build leaves behind (nothing)."""

from __future__ import annotations

import asyncio
import io
import secrets
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from containerd.services.containers.v1 import containers_pb2
from containerd.services.leases.v1 import leases_pb2
from containerd.services.snapshots.v1 import snapshots_pb2
from google.protobuf import any_pb2

from api.container_spec import ContainerSpec
from lab.configs import runtime_config
from lab.seed import busybox_reference
from lab.spec import LabSpec
from runtime.build_layers import BUILD_LEASE_LABEL
from runtime.builder import BuildResult, build
from runtime.containerd_client import SNAPSHOTTER
from runtime.dockerfile_instructions import BuildError
from runtime.driver import RUNC_V2, SPEC_TYPE, ContainerdRuntime
from runtime.protocol import ContainerConfig

pytestmark = pytest.mark.lab

BUILD_DEADLINE = 180.0


async def _clean(runtime: ContainerdRuntime) -> None:
    for container in await runtime.list_containers():
        await runtime.delete(container.id, remove_logs=True)
    for image in await runtime.list_images():
        await runtime.remove_image(image.name)


@pytest.fixture
async def rt(lab2: LabSpec) -> AsyncIterator[ContainerdRuntime]:
    async with ContainerdRuntime(runtime_config(lab2, lab2.host(2))) as runtime:
        yield runtime
        await _clean(runtime)


def write(context: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = context / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


async def build_in(
    rt: ContainerdRuntime, context: Path, tag: str, lines: list[str] | None = None, **kw: object
) -> BuildResult:
    sink = lines if lines is not None else []
    return await asyncio.wait_for(
        build(rt, context, tag=tag, progress=sink.append, **kw),  # type: ignore[arg-type]
        BUILD_DEADLINE,
    )


async def run_image(rt: ContainerdRuntime, image: str) -> tuple[int, list[str]]:
    """Run an image's own command to its end; exit code and output lines."""
    cid = f"c{secrets.token_hex(6)}"
    await rt.create(ContainerConfig(cid, ContainerSpec(image=image)))
    try:
        await rt.start(cid)
        status = await asyncio.wait_for(rt.wait(cid), 60)
        return status.exit_code, [entry.line.rstrip("\n") async for entry in rt.logs(cid)]
    finally:
        await rt.delete(cid, remove_logs=True)


async def leftovers(rt: ContainerdRuntime) -> list[str]:
    """Build containers, build snapshots, build leases and mounts still there."""
    client = rt.client
    found: list[str] = []
    containers = await client.call(
        client.containers.List,
        containers_pb2.ListContainersRequest(filters=[f'labels."{BUILD_LEASE_LABEL}"']),
        "containers",
    )
    found += [f"container {c.id}" for c in containers.containers]
    snapshots = client.snapshots.List(
        snapshots_pb2.ListSnapshotsRequest(snapshotter=SNAPSHOTTER), metadata=client.metadata
    )
    async for reply in snapshots:
        found += [f"snapshot {i.name}" for i in reply.info if "shoal-build-" in i.name]
    leases = await client.call(client.leases.List, leases_pb2.ListRequest(), "leases")
    found += [f"lease {lease.id}" for lease in leases.leases]
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line}" for line in mounts.splitlines() if "shoal-build-" in line]
    return found


async def test_a_built_image_is_pushed_and_runs_on_the_other_host(
    rt: ContainerdRuntime, lab2: LabSpec, tmp_path: Path
) -> None:
    tag = f"{lab2.registry_address}/test/built:1"
    write(
        tmp_path,
        {
            "Dockerfile": f"""\
# a comment, and a continuation line below
FROM {busybox_reference(lab2)}
ENV GREETING=hello \\
    APP_HOME=/srv/app
WORKDIR $APP_HOME
COPY hello.txt ./
RUN echo "made by $(id -u) in $(pwd)" > made.txt && echo step output
COPY conf/ conf/
USER 1000
CMD ["sh", "-c", "cat hello.txt made.txt; ls conf; cat conf/sub/b.conf; \\
     echo \\"$GREETING $(id -u) $(pwd)\\""]
""",
            "hello.txt": "hello from the context\n",
            "conf/a.conf": "a\n",
            "conf/sub/b.conf": "b in a subdirectory\n",
            "conf/secret.key": "never copied\n",
            ".dockerignore": "conf/secret.key\n",
        },
    )
    lines: list[str] = []
    result = await build_in(rt, tmp_path, tag, lines)

    assert result.reference == tag and result.cached_steps == ()
    steps = [line for line in lines if line.startswith("Step ")]
    assert steps[0] == f"Step 1/8 : FROM {busybox_reference(lab2)}"
    assert steps[3] == "Step 4/8 : COPY hello.txt ./" and len(steps) == 8
    assert "step output" in lines  # a RUN's output comes through progress
    assert lines[-2:] == [
        f"Successfully built {result.image_id[7:19]}",
        f"Successfully tagged {tag}",
    ]
    base = await rt.inspect_image(busybox_reference(lab2))
    assert rt.images is not None
    built = await rt.images.inspect(tag)
    assert built.manifest_digest == result.manifest_digest
    assert built.config_descriptor.digest == result.image_id
    assert len(built.layers) == len(base.config["rootfs"]["diff_ids"]) + 3  # type: ignore[index]
    inner = built.config["config"]
    assert inner["WorkingDir"] == "/srv/app" and inner["User"] == "1000"
    assert "GREETING=hello" in inner["Env"] and "APP_HOME=/srv/app" in inner["Env"]
    history = built.config["history"]
    assert [h.get("empty_layer", False) for h in history[-7:]] == [
        True, True, False, False, False, True, True,
    ]  # fmt: skip

    await rt.images.push(tag)
    async with ContainerdRuntime(runtime_config(lab2, lab2.host(1))) as other:
        try:
            pulled = await other.pull(tag)
            assert pulled.digest == result.manifest_digest
            code, output = await run_image(other, tag)
        finally:
            await _clean(other)
    assert code == 0, output
    assert output == [
        "hello from the context",
        "made by 0 in /srv/app",
        "a.conf",
        "sub",
        "b in a subdirectory",
        "hello 1000 /srv/app",
    ]
    assert await leftovers(rt) == []


async def test_an_unchanged_rebuild_is_cached_and_a_changed_file_rebuilds_from_its_step(
    rt: ContainerdRuntime, lab2: LabSpec, tmp_path: Path
) -> None:
    tag = f"test/cached:{secrets.token_hex(3)}"
    write(
        tmp_path,
        {
            "Dockerfile": f"""\
FROM {busybox_reference(lab2)}
COPY a.txt /a.txt
RUN cat /a.txt > /both.txt
COPY b.txt /b.txt
RUN cat /b.txt >> /both.txt
CMD ["cat", "/both.txt"]
""",
            "a.txt": "first\n",
            "b.txt": "second\n",
        },
    )
    first = await build_in(rt, tmp_path, tag)
    assert first.cached_steps == ()

    lines: list[str] = []
    again = await build_in(rt, tmp_path, tag, lines)
    assert again.cached_steps == (2, 3, 4, 5, 6)
    assert lines.count(" ---> Using cache") == 5
    assert not any(line.startswith(" ---> Running in") for line in lines)
    assert (again.manifest_digest, again.image_id) == (first.manifest_digest, first.image_id)
    uncached = await build_in(rt, tmp_path, f"{tag}-nocache", no_cache=True)
    assert uncached.cached_steps == () and uncached.image_id != first.image_id  # new times

    (tmp_path / "b.txt").write_text("changed\n")
    changed = await build_in(rt, tmp_path, tag)
    assert changed.cached_steps == (2, 3)
    assert changed.manifest_digest != first.manifest_digest
    assert await run_image(rt, tag) == (0, ["first", "changed"])
    assert (await rt.inspect_image(f"docker.io/{tag}")).digest == changed.manifest_digest
    assert await leftovers(rt) == []


async def test_add_unpacks_a_tar_and_copy_honours_chown_and_build_args(
    rt: ContainerdRuntime, lab2: LabSpec, tmp_path: Path
) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("bundle/one.txt", b"one\n"), ("bundle/deep/two.txt", b"two\n")):
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid = len(data), 1000, 1000
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "bundle.tar.gz").write_bytes(archive.getvalue())
    write(
        tmp_path,
        {
            "Dockerfile": f"""\
ARG BASE={busybox_reference(lab2)}
FROM $BASE
ARG WHO=nobody
ADD bundle.tar.gz /opt/
COPY --chown=app:app owned.txt /home/app/
RUN echo "$WHO" > /who.txt
CMD ["sh", "-c", "cat /opt/bundle/one.txt /opt/bundle/deep/two.txt /who.txt; \\
     stat -c '%u:%g %a' /opt/bundle/one.txt /home/app/owned.txt"]
""",
            "owned.txt": "mine\n",
        },
    )
    tag = f"test/add:{secrets.token_hex(3)}"
    lines: list[str] = []
    await build_in(rt, tmp_path, tag, lines, build_args={"WHO": "builder", "UNUSED": "x"})
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in lines
    code, output = await run_image(rt, tag)
    assert code == 0, output
    assert output == ["one", "two", "builder", "1000:1000 644", "1000:1000 644"]


async def test_a_failing_run_stops_the_build_with_its_code_and_output(
    rt: ContainerdRuntime, lab2: LabSpec, tmp_path: Path
) -> None:
    write(
        tmp_path,
        {
            "Dockerfile": f"""\
FROM {busybox_reference(lab2)}
RUN echo made >/made.txt
RUN echo about to fail; echo on stderr >&2; exit 3
""",
        },
    )
    tag = f"test/failing:{secrets.token_hex(3)}"
    # What a crashed build leaves: a container naming a lease that is gone.
    orphan = containers_pb2.Container(
        id=f"shoal-build-{secrets.token_hex(6)}",
        labels={BUILD_LEASE_LABEL: "shoal-pull-gone"},
        runtime=containers_pb2.Container.Runtime(name=RUNC_V2),
        spec=any_pb2.Any(type_url=SPEC_TYPE, value=b"{}"),
    )
    await rt.client.call(
        rt.client.containers.Create, containers_pb2.CreateContainerRequest(container=orphan), "c"
    )
    lines: list[str] = []
    with pytest.raises(BuildError) as caught:
        await build_in(rt, tmp_path, tag, lines)
    assert str(caught.value) == (
        "The command '/bin/sh -c echo about to fail; echo on stderr >&2; exit 3' "
        "returned a non-zero code: 3"
    )
    assert "about to fail" in caught.value.output and "on stderr" in caught.value.output
    assert "about to fail" in lines  # streamed while it ran
    assert f"docker.io/{tag}" not in [i.name for i in await rt.list_images()]
    assert await leftovers(rt) == []  # the orphan too: the build removed it


async def test_syntax_errors_and_missing_sources_name_their_line(
    rt: ContainerdRuntime, lab2: LabSpec, tmp_path: Path
) -> None:
    tag = f"test/bad:{secrets.token_hex(3)}"
    base = busybox_reference(lab2)
    cases = {
        f"FROM {base}\nRUN true\nFOO bar\n": "Dockerfile:3: unknown instruction: FOO",
        f"FROM {base}\nENV\n": "Dockerfile:2: ENV requires",
        f"FROM {base}\n\nCOPY missing.txt /x\n": (
            "Dockerfile:3: COPY failed: file not found in build context or excluded by "
            ".dockerignore: missing.txt"
        ),
        f"FROM {base}\nCOPY ../outside /x\n": (
            "Dockerfile:2: COPY failed: forbidden path outside the build context"
        ),
        "FROM busybox@sha256:nothex\n": "Dockerfile:1: FROM busybox@sha256:nothex",
    }
    for dockerfile, message in cases.items():
        (tmp_path / "Dockerfile").write_text(dockerfile)
        with pytest.raises(BuildError) as caught:
            await build_in(rt, tmp_path, tag)
        assert str(caught.value).startswith(message), (dockerfile, str(caught.value))
    with pytest.raises(BuildError, match="Cannot locate specified Dockerfile: nope"):
        await build_in(rt, tmp_path, tag, dockerfile="nope")
    assert await leftovers(rt) == []
