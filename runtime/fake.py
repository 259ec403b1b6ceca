"""FakeRuntime: an in-memory `ContainerRuntime` for fast tests of the agent.

Processes are simulated: a container's command is read as a tiny shell —
`echo TEXT [>&2]`, `exit N`, `sleep N`, `trap 'exit N' TERM`, `trap '' TERM`
and `while :; do ...; done` — which is enough for the contract suite the real
runtime also passes. State lives in a `FakeHost`, so a second FakeRuntime on
the same host sees the first one's containers, as after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runtime.logs import LogEntry
from runtime.oci_spec import ImageConfig, merge_args
from runtime.protocol import (
    MANAGED_LABEL,
    ContainerConfig,
    ContainerInfo,
    ContainerNotFound,
    ContainerRuntimeError,
    ContainerStats,
    ExecResult,
    ExitStatus,
    ImageSummary,
)
from runtime.reference import parse_reference
from runtime.registry import ImageNotFound
from runtime.unpack import ImageError

SIGNALS = {"SIGTERM": 15, "SIGKILL": 9, "SIGINT": 2, "SIGHUP": 1, "SIGQUIT": 3}


@dataclass
class FakeProcess:
    script: list[str]
    output: list[LogEntry] = field(default_factory=list)
    term_action: int | None = 143  # exit code on SIGTERM; None: ignored
    exit_code: int | None = None
    last_status: int = 0
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    exited_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    runner: asyncio.Task[None] | None = None

    def finish(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code
            self.exited_at = datetime.now(UTC)
            self.exited.set()
            if self.runner is not None and self.runner is not asyncio.current_task():
                self.runner.cancel()


@dataclass
class FakeContainer:
    config: ContainerConfig
    image: str
    state: str = "created"
    process: FakeProcess | None = None


@dataclass
class FakeHost:
    """What survives a FakeRuntime 'restart': images, containers, processes."""

    registry: dict[str, dict[str, object]] = field(default_factory=dict)
    images: dict[str, ImageSummary] = field(default_factory=dict)
    containers: dict[str, FakeContainer] = field(default_factory=dict)


def split_script(argv: list[str]) -> list[str]:
    """`sh -c SCRIPT` into statements; anything else is one statement."""
    if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c":
        script = argv[2]
        loop = re.fullmatch(r"(.*?)while :; do (.*?); done(.*)", script, re.S)
        if loop:
            before, body, after = loop.groups()
            return [*_statements(before), f"loop {body}", *_statements(after)]
        return _statements(script)
    return [" ".join(argv)]


def _statements(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"[;\n]", text) if s.strip()]


class FakeRuntime:
    def __init__(self, host: FakeHost | None = None) -> None:
        self.host = host or FakeHost()

    async def close(self) -> None:
        return None

    # ---- images -------------------------------------------------------------

    async def pull(self, image: str) -> ImageSummary:
        name = parse_reference(image).name
        config = self.host.registry.get(name)
        if config is None:
            raise ImageNotFound(f"image {name}: not found in the registry")
        summary = ImageSummary(name, f"sha256:{abs(hash(name)):064x}"[:71], 1024, config)
        self.host.images[name] = summary
        return summary

    async def inspect_image(self, image: str) -> ImageSummary:
        name = parse_reference(image).name
        if name not in self.host.images:
            raise ImageError(f"image {name} not found on this host")
        return self.host.images[name]

    async def list_images(self) -> list[ImageSummary]:
        return list(self.host.images.values())

    async def remove_image(self, image: str) -> None:
        name = (await self.inspect_image(image)).name
        users = [c for c, v in self.host.containers.items() if v.image == name]
        if users:
            raise ImageError(f"image {name} is in use by container(s) {', '.join(users)}")
        del self.host.images[name]

    # ---- containers ---------------------------------------------------------

    def _get(self, container_id: str) -> FakeContainer:
        container = self.host.containers.get(container_id)
        if container is None:
            raise ContainerNotFound(f"no container {container_id} on this host")
        return container

    async def create(self, config: ContainerConfig) -> None:
        image = await self.inspect_image(config.spec.image)
        if config.id in self.host.containers:
            raise ContainerRuntimeError(f"container {config.id}: already exists")
        merge_args(config.spec, ImageConfig.from_json(dict(image.config)))
        self.host.containers[config.id] = FakeContainer(config, image.name)

    async def start(self, container_id: str) -> int:
        container = self._get(container_id)
        image = self.host.images[container.image]
        argv = merge_args(container.config.spec, ImageConfig.from_json(dict(image.config)))
        process = FakeProcess(split_script(argv))
        container.process = process
        container.state = "running"
        process.runner = asyncio.create_task(self._run(container, process))
        return 1000 + len(self.host.containers)

    async def _run(self, container: FakeContainer, process: FakeProcess) -> None:
        try:
            code = await self._interpret(process.script, process)
        except asyncio.CancelledError:
            return
        process.finish(code)
        container.state = "stopped"

    async def _interpret(self, statements: list[str], process: FakeProcess) -> int:
        code = await self._block(statements, process)
        return process.last_status if code is None else code

    async def _block(self, statements: list[str], process: FakeProcess) -> int | None:
        """Runs statements; an int is an `exit`, None means it fell off the end."""
        for statement in statements:
            if statement.startswith("loop "):
                body = _statements(statement[5:])
                while True:
                    code = await self._block(body, process)
                    if code is not None:
                        return code
                    await asyncio.sleep(0)
            word, _, rest = statement.partition(" ")
            process.last_status = 0
            if word == "echo":
                stream = "stderr" if rest.endswith(">&2") else "stdout"
                text = rest.removesuffix(">&2").strip().strip("'\"")
                process.output.append(LogEntry(datetime.now(UTC), stream, text + "\n"))
            elif word == "exit":
                return int(rest or 0)
            elif word == "sleep":
                await asyncio.sleep(float(rest))
            elif word == "trap":
                action = re.match(r"'(.*)' TERM", rest)
                if action:
                    handler = action.group(1)
                    process.term_action = int(handler.split()[1]) if handler else None
            elif word == "false":
                process.last_status = 1
            elif word not in ("true", ":"):
                process.last_status = 127  # command not found
        return None

    async def wait(self, container_id: str) -> ExitStatus:
        process = self._get(container_id).process
        if process is None:
            raise ContainerRuntimeError(f"container {container_id}: not started")
        await process.exited.wait()
        assert process.exit_code is not None
        return ExitStatus(process.exit_code, False, process.exited_at)

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        container = self._get(container_id)
        process = container.process
        if process is None or process.exit_code is not None:
            raise ContainerRuntimeError(f"container {container_id}: not running")
        number = SIGNALS.get(signal.upper(), 15)
        if number == 9:
            process.finish(137)
        elif number == 15 and process.term_action is not None:
            process.finish(process.term_action)
        container.state = "stopped" if process.exit_code is not None else container.state

    async def stop(self, container_id: str, grace: float | None = None) -> ExitStatus:
        container = self._get(container_id)
        if grace is None:
            grace = (container.config.spec.stop_grace_period or 10_000_000_000) / 1e9
        with contextlib.suppress(ContainerRuntimeError):
            await self.kill(container_id, container.config.spec.stop_signal or "SIGTERM")
        try:
            return await asyncio.wait_for(self.wait(container_id), grace)
        except TimeoutError:
            await self.kill(container_id, "SIGKILL")
            return await self.wait(container_id)

    async def delete(self, container_id: str, *, remove_logs: bool = False) -> None:
        container = self._get(container_id)
        if container.process is not None and container.process.exit_code is None:
            container.process.finish(137)
        del self.host.containers[container_id]

    async def exec(self, container_id: str, argv: list[str], timeout: float = 30.0) -> ExecResult:
        container = self._get(container_id)
        if container.state != "running":
            raise ContainerRuntimeError(f"container {container_id}: not running")
        process = FakeProcess(split_script(argv))
        try:
            code = await asyncio.wait_for(self._interpret(process.script, process), timeout)
        except TimeoutError:
            raise ContainerRuntimeError(f"exec {argv[0]} in {container_id} timed out") from None
        out = "".join(e.line for e in process.output if e.stream == "stdout").encode()
        err = "".join(e.line for e in process.output if e.stream == "stderr").encode()
        return ExecResult(code, out, err)

    async def list_containers(self) -> list[ContainerInfo]:
        result = []
        for cid, c in self.host.containers.items():
            code = c.process.exit_code if c.process else None
            labels = {**c.config.labels, MANAGED_LABEL: "true"}
            result.append(ContainerInfo(cid, c.image, labels, c.state, 1, code))
        return result

    async def stats(self, container_id: str) -> ContainerStats:
        container = self._get(container_id)
        limit = container.config.limits.memory_bytes or 2**63 - 1
        return ContainerStats(0, 0, limit, 1 if container.state == "running" else 0)

    async def logs(
        self,
        container_id: str,
        *,
        since: datetime | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogEntry]:
        process = self._get(container_id).process
        entries = [] if process is None else list(process.output)
        if since is not None:
            entries = [e for e in entries if e.time >= since]
        if tail is not None:
            entries = entries[-tail:] if tail else []
        for entry in entries:
            yield entry
