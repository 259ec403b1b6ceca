"""ONE contract suite for the ContainerRuntime Protocol, run against the fake
and against the real containerd driver on a lab host."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import pytest

from api.container_spec import ContainerSpec
from lab.configs import runtime_config
from lab.seed import busybox_reference
from lab.spec import LabSpec
from runtime.driver import ContainerdRuntime
from runtime.fake import FakeHost, FakeRuntime
from runtime.protocol import ContainerConfig, ContainerNotFound, ContainerRuntime
from runtime.registry import ImageNotFound
from runtime.unpack import ImageError

FAKE_IMAGE = "registry.test/library/busybox:latest"
BUSYBOX_CONFIG: dict[str, object] = {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}}


class Subject:
    """A runtime under test, how to make another one on the same host (as after
    a restart), and the image it can pull."""

    def __init__(
        self, runtime: ContainerRuntime, image: str, again: Callable[[], ContainerRuntime]
    ) -> None:
        self.runtime = runtime
        self.image = image
        self.again = again


@pytest.fixture(params=["fake", pytest.param("containerd", marks=pytest.mark.lab)])
def backend(request: pytest.FixtureRequest) -> LabSpec | None:
    """None for the fake; a lab (built outside any event loop) for containerd."""
    if request.param == "fake":
        return None
    lab: LabSpec = request.getfixturevalue("lab2")
    return lab


@pytest.fixture
async def subject(backend: LabSpec | None) -> AsyncIterator[Subject]:
    if backend is None:
        host = FakeHost(registry={FAKE_IMAGE: BUSYBOX_CONFIG})
        yield Subject(FakeRuntime(host), FAKE_IMAGE, lambda: FakeRuntime(host))
        return
    lab = backend
    config = runtime_config(lab, lab.host(2))
    real = ContainerdRuntime(config)
    await real.open()

    def again() -> ContainerRuntime:
        return ContainerdRuntime(config)

    try:
        yield Subject(real, busybox_reference(lab), again)
    finally:
        for container in await real.list_containers():
            await real.delete(container.id, remove_logs=True)
        await real.close()


def cid() -> str:
    return f"k{secrets.token_hex(8)}"


def sh(image: str, script: str) -> ContainerSpec:
    return ContainerSpec(image=image, command=["sh", "-c", script])


async def started(s: Subject, script: str) -> str:
    await s.runtime.pull(s.image)
    container = cid()
    await s.runtime.create(ContainerConfig(container, sh(s.image, script)))
    await s.runtime.start(container)
    return container


async def test_a_command_runs_to_its_exit_code_with_its_output_in_the_logs(
    subject: Subject,
) -> None:
    s = subject
    container = await started(s, "echo hello; echo oops >&2; exit 3")
    status = await asyncio.wait_for(s.runtime.wait(container), 30)
    assert status.exit_code == 3 and not status.oom_killed
    lines = [(e.stream, e.line) async for e in s.runtime.logs(container)]
    assert lines == [("stdout", "hello\n"), ("stderr", "oops\n")]
    tail = [e.line async for e in s.runtime.logs(container, tail=1)]
    assert tail == ["oops\n"]


async def test_stop_uses_sigterm_first_and_sigkill_after_the_grace(subject: Subject) -> None:
    s = subject
    polite = await started(s, "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    stubborn = await started(s, "trap '' TERM; while :; do sleep 0.1; done")
    await asyncio.sleep(0.5)
    assert (await s.runtime.stop(polite, grace=20)).exit_code == 0
    assert (await s.runtime.stop(stubborn, grace=0.5)).exit_code == 137


async def test_exec_returns_exit_code_and_output(subject: Subject) -> None:
    s = subject
    container = await started(s, "while :; do sleep 0.1; done")
    result = await s.runtime.exec(container, ["sh", "-c", "echo probe; exit 2"])
    assert (result.exit_code, result.stdout) == (2, b"probe\n")


async def test_deleted_containers_are_gone(subject: Subject) -> None:
    s = subject
    container = await started(s, "while :; do sleep 0.1; done")
    assert container in [c.id for c in await s.runtime.list_containers()]
    await s.runtime.delete(container)
    assert container not in [c.id for c in await s.runtime.list_containers()]
    with pytest.raises(ContainerNotFound):
        await s.runtime.delete(container)
    with pytest.raises(ContainerNotFound):
        await s.runtime.stats(container)


async def test_images_missing_remotely_or_locally_are_clear_errors(subject: Subject) -> None:
    s = subject
    missing = s.image.replace("busybox:latest", "nothing:latest")
    with pytest.raises(ImageNotFound, match="nothing:latest"):
        await s.runtime.pull(missing)
    with pytest.raises(ImageError, match="not found on this host"):
        await s.runtime.create(ContainerConfig(cid(), ContainerSpec(image=missing)))


async def test_an_image_in_use_cannot_be_removed(subject: Subject) -> None:
    s = subject
    container = await started(s, "exit 0")
    with pytest.raises(ImageError, match="in use"):
        await s.runtime.remove_image(s.image)
    await s.runtime.delete(container)
    await s.runtime.remove_image(s.image)
    assert s.image not in [i.name for i in await s.runtime.list_images()]


async def test_a_new_runtime_on_the_same_host_finds_running_containers(subject: Subject) -> None:
    s = subject
    container = await started(s, "while :; do sleep 0.1; done")
    second = s.again()
    if isinstance(second, ContainerdRuntime):
        await second.open()
    try:
        found = {c.id: c for c in await second.list_containers()}
        assert found[container].state == "running"
        waiter = asyncio.create_task(second.wait(container))
        await second.kill(container, "SIGKILL")
        assert (await asyncio.wait_for(waiter, 30)).exit_code == 137
    finally:
        await second.close()
