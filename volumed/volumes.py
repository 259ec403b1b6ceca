"""What the plugin API does, without HTTP: the volumes of this node, who
mounts them, the rules (no removing a volume in use) and the state file that
survives a restart. The backends do the I/O.

Users on this node share one mount, which goes with the last of them. That a
non-shared shoal volume is mounted on one node at a time is the managers'
rule (manager/scheduler/volumes.py): only they see every node."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

from volumed.backend import BackendError, VolumeBackend
from volumed.model import (
    Volume,
    VolumeError,
    load_volumes,
    new_volume,
    same_request,
    save_volumes,
    validate_name,
)

T = TypeVar("T")


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


class Volumes:
    def __init__(
        self,
        state_file: Path,
        backends: Mapping[str, VolumeBackend],
        now: Callable[[], str] = utc_now,
    ) -> None:
        self.state_file = state_file
        self.backends = backends
        self.now = now
        self.volumes: dict[str, Volume] = {}
        # One change at a time: a Mount waits for the Create before it.
        self.lock = asyncio.Lock()

    def load(self) -> None:
        self.volumes = load_volumes(self.state_file)

    async def recover(self) -> None:
        """Put the mounts back as the state file recorded them: the volumes in
        use mounted, nothing else left mounted. Calls wait until it is done."""
        async with self.lock:
            for driver, backend in self.backends.items():
                in_use = [v for v in self.volumes.values() if v.driver == driver and v.in_use]
                await backend.recover(in_use)

    def _save(self) -> None:
        save_volumes(self.state_file, self.volumes)

    def _get(self, name: object) -> Volume:
        volume = self.volumes.get(validate_name(name))
        if volume is None:
            raise VolumeError(f"no such volume: {name}")
        return volume

    def _backend(self, volume: Volume) -> VolumeBackend:
        return self.backends[volume.driver]

    async def create(self, name: object, options: Mapping[str, object] | None) -> Volume:
        wanted = new_volume(name, options, self.now())
        if wanted.driver not in self.backends:
            raise VolumeError(f"the {wanted.driver} driver is not available on this node")
        async with self.lock:
            existing = self.volumes.get(wanted.name)
            if existing is not None:
                if not same_request(existing, wanted):
                    raise VolumeError(
                        f"volume {wanted.name} exists with other options "
                        f"(driver {existing.driver}, {existing.status()})"
                    )
                return existing
            await _backend_call(self._backend(wanted).create(wanted))
            self.volumes[wanted.name] = wanted
            self._save()
            return wanted

    async def remove(self, name: object) -> None:
        async with self.lock:
            volume = self._get(name)
            if volume.in_use:
                raise VolumeError(
                    f"volume {volume.name} is in use by {', '.join(volume.mounts)}: "
                    "unmount it first"
                )
            await _backend_call(self._backend(volume).remove(volume))
            del self.volumes[volume.name]
            self._save()

    async def mount(self, name: object, mount_id: object) -> Path:
        if not isinstance(mount_id, str) or not mount_id:
            raise VolumeError("Mount needs the ID of the caller")
        async with self.lock:
            volume = self._get(name)
            path = await _backend_call(self._backend(volume).mount(volume))
            self.volumes[volume.name] = volume.with_mount(mount_id)
            self._save()
            return path

    async def unmount(self, name: object, mount_id: object) -> None:
        """Idempotent: an ID that holds no mount of the volume is fine, so a
        caller can retry."""
        async with self.lock:
            volume = self._get(name)
            remaining = volume.without_mount(str(mount_id))
            if volume.in_use and not remaining.in_use:
                await _backend_call(self._backend(volume).unmount(volume))
            self.volumes[volume.name] = remaining
            self._save()

    def path(self, name: object) -> Path | None:
        """Where the volume is mounted; None while nobody mounts it."""
        volume = self._get(name)
        return self._backend(volume).path(volume) if volume.in_use else None

    def get(self, name: object) -> Volume:
        return self._get(name)

    def list(self) -> list[Volume]:
        return sorted(self.volumes.values(), key=lambda v: v.name)

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()


async def _backend_call(call: Awaitable[T]) -> T:
    """A backend's failure reaches the caller as the plugin's Err."""
    try:
        return await call
    except BackendError as exc:
        raise VolumeError(str(exc)) from None
