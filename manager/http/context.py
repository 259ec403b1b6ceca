"""What the API handlers reach: the store, and facts about this manager."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from manager.secret_box import SecretBox
from manager.store.store import Store
from manager.volumed_client import VolumeData


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    def leader(self) -> str | None: ...

    async def read_barrier(self) -> None: ...


@dataclass
class ManagerInfo:
    node_id: str
    hostname: str
    advertise_addr: str  # host:port of this manager's API
    raft_addr: str
    leadership: Leadership
    ncpu: int = 1
    memory_bytes: int = 0
    kernel: str = field(default_factory=platform.release)
    joining: bool = False  # a join asked through the API waits for the restart


@dataclass
class APIContext:
    store: Store
    manager: ManagerInfo
    secret_box: SecretBox  # seals secret values for the store, opens them for nodes
    # volumed on this manager's host, which deletes a removed distributed
    # volume's data; None: removing a volume removes only its record.
    volume_data: VolumeData | None = None


CONTEXT = web.AppKey("context", APIContext)


def context(request: web.Request) -> APIContext:
    return request.app[CONTEXT]
