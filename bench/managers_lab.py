"""A lab with managers for the manager benchmarks, and small HTTP helpers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

from lab.configs import manager_address
from lab.lifecycle import lab_down, lab_up
from lab.managers import lab_tls
from lab.spec import LabSpec


@contextmanager
def managers_lab(managers: int = 3) -> Iterator[LabSpec]:
    name = f"bm{secrets.token_hex(2)}"
    try:
        yield lab_up(name, managers, created_by="bench", managers=managers)
    finally:
        lab_down(name)


def api_url(lab: LabSpec, host: int) -> str:
    return f"https://{manager_address(lab.host(host))}"


def lab_connector(lab: LabSpec, limit: int = 100) -> aiohttp.TCPConnector:
    """Connections to the lab's managers with its admin certificate."""
    return aiohttp.TCPConnector(limit=limit, ssl=lab_tls(lab))


async def request(
    session: aiohttp.ClientSession, method: str, url: str, **kw: Any
) -> tuple[int, Any]:
    async with session.request(method, url, **kw) as reply:
        return reply.status, await reply.json(content_type=None)


async def leader_host(session: aiohttp.ClientSession, lab: LabSpec) -> int:
    _, nodes = await request(session, "GET", f"{api_url(lab, 1)}/nodes")
    for node in nodes:
        status = node.get("ManagerStatus") or {}
        if status.get("Leader"):
            for host in lab.all_hosts():
                if status.get("Addr") == manager_address(host):
                    return host.index
    raise RuntimeError("no leader")
