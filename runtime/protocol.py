"""The agent's view of a container runtime: the `ContainerRuntime` Protocol and
the values that cross it. `ContainerdRuntime` (runtime.driver) is the real one;
`FakeRuntime` (runtime.fake) is the in-memory one for fast tests; ONE contract
suite (tests/contract) runs against both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from api.container_spec import ContainerSpec, Limits
from runtime.logs import LogEntry

MANAGED_LABEL = "shoal.managed"


class ContainerRuntimeError(RuntimeError):
    """Base of the runtime's user-facing errors."""


class ContainerNotFound(ContainerRuntimeError):
    pass


@dataclass(frozen=True)
class ContainerConfig:
    id: str
    spec: ContainerSpec
    limits: Limits = field(default_factory=Limits)
    netns_path: str | None = None  # None: a new, empty network namespace
    resolv_conf: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageSummary:
    name: str
    digest: str  # what the name points at (manifest or index)
    size: int  # compressed layers
    config: dict[str, object]


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    oom_killed: bool
    exited_at: datetime


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    image: str
    labels: dict[str, str]
    state: str  # created | running | stopped | missing (no task)
    pid: int
    exit_code: int | None


@dataclass(frozen=True)
class ContainerStats:
    cpu_usage_ns: int
    memory_usage_bytes: int
    memory_limit_bytes: int
    pids: int


class ContainerRuntime(Protocol):
    async def pull(self, image: str) -> ImageSummary: ...

    async def inspect_image(self, image: str) -> ImageSummary: ...

    async def list_images(self) -> list[ImageSummary]: ...

    async def remove_image(self, image: str) -> None: ...

    async def create(self, config: ContainerConfig) -> None: ...

    async def start(self, container_id: str) -> int: ...

    async def wait(self, container_id: str) -> ExitStatus: ...

    async def stop(self, container_id: str, grace: float | None = None) -> ExitStatus: ...

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None: ...

    async def delete(self, container_id: str, *, remove_logs: bool = False) -> None: ...

    async def exec(
        self, container_id: str, argv: list[str], timeout: float = 30.0
    ) -> ExecResult: ...

    async def list_containers(self) -> list[ContainerInfo]: ...

    async def stats(self, container_id: str) -> ContainerStats: ...

    def logs(
        self,
        container_id: str,
        *,
        since: datetime | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[LogEntry]: ...

    async def close(self) -> None: ...
