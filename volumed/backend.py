"""Where a driver's volumes live: the `VolumeBackend` boundary, the `local`
driver's backend and a fake.

A backend knows nothing of users: `Volumes` counts who mounts what and asks
the backend to mount a volume on this node when the first user comes and to
unmount it when the last one goes. tests/unit/test_volumed_backend_contract.py
is the one suite every backend passes.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

from volumed.model import Volume


class BackendError(Exception):
    """The backend could not do what was asked; the message says why."""


class VolumeBackend(Protocol):
    async def create(self, volume: Volume) -> None:
        """Make the volume's storage; fine if it exists already."""

    async def remove(self, volume: Volume) -> None:
        """Delete the volume's data for good (it is not mounted)."""

    async def mount(self, volume: Volume) -> Path:
        """Make the volume's data reachable at `path(volume)` on this node;
        a volume mounted already stays as it is."""

    async def unmount(self, volume: Volume) -> None:
        """Undo `mount`; a volume not mounted is fine."""

    def path(self, volume: Volume) -> Path:
        """Where the volume is (or would be) mounted."""

    def mounted(self) -> set[str]:
        """Names of the volumes mounted on this node now."""

    async def recover(self, in_use: Collection[Volume]) -> None:
        """After volumed restarted: exactly the volumes in `in_use` mounted,
        any other mount this backend left behind undone."""

    async def close(self) -> None:
        """volumed is stopping."""


class LocalBackend:
    """Docker's `local` driver: a directory on this node,
    <root>/<name>/_data. Mounting it is having it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mounted: set[str] = set()

    def path(self, volume: Volume) -> Path:
        return self.root / volume.name / "_data"

    async def create(self, volume: Volume) -> None:
        self.path(volume).mkdir(parents=True, exist_ok=True)

    async def remove(self, volume: Volume) -> None:
        self._mounted.discard(volume.name)
        await asyncio.to_thread(shutil.rmtree, self.root / volume.name, ignore_errors=True)

    async def mount(self, volume: Volume) -> Path:
        path = self.path(volume)
        if not path.is_dir():
            raise BackendError(f"volume {volume.name}: its directory {path} is gone")
        self._mounted.add(volume.name)
        return path

    async def unmount(self, volume: Volume) -> None:
        self._mounted.discard(volume.name)

    def mounted(self) -> set[str]:
        return set(self._mounted)

    async def recover(self, in_use: Collection[Volume]) -> None:
        self._mounted = {v.name for v in in_use if self.path(v).is_dir()}

    async def close(self) -> None:
        pass


class FakeBackend:
    """Directories under `root` stand in for the mounts; it records calls and
    fails the next operation named in `fail` (tests of error paths)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: set[str] = set()
        self._mounted: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.fail: set[str] = set()

    def _call(self, operation: str, volume: Volume) -> None:
        self.calls.append((operation, volume.name))
        if operation in self.fail:
            self.fail.discard(operation)
            raise BackendError(f"{operation} {volume.name}: injected failure")

    def path(self, volume: Volume) -> Path:
        return self.root / volume.name

    async def create(self, volume: Volume) -> None:
        self._call("create", volume)
        self.path(volume).mkdir(parents=True, exist_ok=True)
        self.created.add(volume.name)

    async def remove(self, volume: Volume) -> None:
        self._call("remove", volume)
        shutil.rmtree(self.path(volume), ignore_errors=True)
        self.created.discard(volume.name)
        self._mounted.discard(volume.name)

    async def mount(self, volume: Volume) -> Path:
        self._call("mount", volume)
        if volume.name not in self.created and not self.path(volume).is_dir():
            raise BackendError(f"volume {volume.name} has no storage")
        self._mounted.add(volume.name)
        return self.path(volume)

    async def unmount(self, volume: Volume) -> None:
        self._call("unmount", volume)
        self._mounted.discard(volume.name)

    def mounted(self) -> set[str]:
        return set(self._mounted)

    async def recover(self, in_use: Collection[Volume]) -> None:
        self._mounted = {v.name for v in in_use}

    async def close(self) -> None:
        pass
