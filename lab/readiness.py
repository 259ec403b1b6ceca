"""Is a lab ready? Every host's containerd answers a Version call over gRPC and
the registry answers its /v2/ endpoint."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from lab.spec import HostSpec, LabSpec
from runtime.containerd_client import ContainerdUnavailable, fetch_version

POLL_SECONDS = 0.1


@dataclass(frozen=True)
class HostHealth:
    host: HostSpec
    containerd_version: str | None  # None while containerd does not answer
    detail: str


async def containerd_health(host: HostSpec) -> HostHealth:
    try:
        version = await fetch_version(host.containerd_socket, timeout=1.0)
    except ContainerdUnavailable as exc:
        return HostHealth(host, None, str(exc))
    return HostHealth(host, version, "answering")


async def registry_answers(spec: LabSpec) -> bool:
    url = f"http://{spec.registry_address}/v2/"
    try:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as reply:
            return reply.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def lab_health(spec: LabSpec) -> tuple[list[HostHealth], bool]:
    hosts = await asyncio.gather(*(containerd_health(h) for h in spec.all_hosts()))
    return list(hosts), await registry_answers(spec)


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


async def _wait(spec: LabSpec, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        hosts, registry_ok = await lab_health(spec)
        waiting = [h for h in hosts if h.containerd_version is None]
        if not waiting and registry_ok:
            return
        if time.monotonic() > deadline:
            if waiting:
                host = waiting[0].host
                raise TimeoutError(
                    f"containerd on {host.name} did not answer within {timeout:.0f}s: "
                    f"{waiting[0].detail}; log: {_log_tail(host.directory / 'containerd.log')}"
                )
            log = _log_tail(spec.host(1).directory / "registry.log")
            raise TimeoutError(
                f"the registry at {spec.registry_address} did not answer within {timeout:.0f}s; "
                f"log: {log}"
            )
        await asyncio.sleep(POLL_SECONDS)


def wait_until_ready(spec: LabSpec, timeout: float) -> None:
    asyncio.run(_wait(spec, timeout))
