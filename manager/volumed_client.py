"""The manager's use of volumed on its own host: deleting a distributed
volume's data when the volume is removed. SeaweedFS keeps that data for the
whole cluster, so any node's volumed can delete it; the manager asks its own.

volumed speaks Docker's volume-plugin protocol: Remove forgets a volume it
knows, so the volume is first made known to it with Create (a no-op when it
already is, as long as the request is the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import aiohttp

from api.volume_plugin import VolumePluginError, call_volume_plugin


class VolumeData(Protocol):
    async def delete_data(self, name: str, driver: str, options: dict[str, str]) -> None:
        """Delete the volume's data cluster-wide, or raise VolumePluginError
        (volumed refused, with its Err, or did not answer)."""
        ...


class VolumedClient:
    def __init__(self, socket_path: Path, timeout: float = 60.0) -> None:
        self.socket_path = socket_path
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def delete_data(self, name: str, driver: str, options: dict[str, str]) -> None:
        opts = {"driver": driver, **options}
        await call_volume_plugin(
            self.socket_path, "Create", {"Name": name, "Opts": opts}, self.timeout
        )
        await call_volume_plugin(self.socket_path, "Remove", {"Name": name}, self.timeout)


class FakeVolumed:
    """Records what it was asked; `refuse` makes it answer with that Err."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str, str, dict[str, str]]] = []
        self.refuse = ""

    async def delete_data(self, name: str, driver: str, options: dict[str, str]) -> None:
        if self.refuse:
            raise VolumePluginError(self.refuse)
        self.deleted.append((name, driver, dict(options)))
