"""The agent's side of volumed (Docker's volume-plugin protocol on a unix
socket on the same host): a task's volumes are created if need be and
mounted while the task is prepared, and unmounted as soon as its container
has stopped, so that the next task using a distributed volume can mount it on
another node. Each mount is recorded under the task's ID, so unmounting is
idempotent and a restarted agent can undo the mounts of tasks it dropped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from api.volume_mounts import is_volume_mount, needs_one_node, volume_driver
from api.volume_plugin import VolumePluginError, call_volume_plugin

Obj = dict[str, Any]
ANONYMOUS = "anon-"  # the prefix of an anonymous volume's name


class VolumeError(RuntimeError):
    """volumed refused or could not be reached; the message says why."""


class VolumePlugin(Protocol):
    async def create(self, name: str, options: dict[str, str]) -> None: ...

    async def mount(self, name: str, mount_id: str) -> Path: ...

    async def unmount(self, name: str, mount_id: str) -> None: ...

    async def names(self) -> list[str]: ...

    async def remove(self, name: str) -> None: ...


def volume_mounts(task: Obj) -> list[tuple[int, str, Obj]]:
    """(index among the mounts, volume name, mount) for each volume mount of
    the task. An anonymous one (no Source) gets a local volume of its own,
    named after the task, as Docker gives it one; it goes with the task."""
    container = (task.get("Spec") or {}).get("ContainerSpec") or {}
    found = []
    for index, mount in enumerate(container.get("Mounts") or []):
        if is_volume_mount(mount):
            name = str(mount.get("Source") or "") or f"{ANONYMOUS}{task['ID']}-{index}"
            found.append((index, name, mount))
    return found


def anonymous_volumes(task: Obj) -> list[str]:
    return [name for _, name, m in volume_mounts(task) if not m.get("Source")]


def create_options(mount: Obj, record: Obj | None) -> dict[str, str]:
    """What volumed's Create gets: the driver and options of the volume as
    the cluster store knows it, else as the mount names them."""
    driver, options = volume_driver(mount, record)
    return {**options, "driver": driver}


class PluginClient:
    def __init__(self, socket_path: Path, timeout: float = 90.0) -> None:
        self.socket_path = socket_path
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(self, operation: str, body: Obj) -> Obj:
        try:
            return await call_volume_plugin(self.socket_path, operation, body, self.timeout)
        except VolumePluginError as exc:
            raise VolumeError(str(exc)) from None

    async def create(self, name: str, options: dict[str, str]) -> None:
        await self._call("Create", {"Name": name, "Opts": options})

    async def mount(self, name: str, mount_id: str) -> Path:
        answer = await self._call("Mount", {"Name": name, "ID": mount_id})
        return Path(str(answer.get("Mountpoint") or ""))

    async def unmount(self, name: str, mount_id: str) -> None:
        await self._call("Unmount", {"Name": name, "ID": mount_id})

    async def names(self) -> list[str]:
        answer = await self._call("List", {})
        return [str(v.get("Name")) for v in answer.get("Volumes") or []]

    async def remove(self, name: str) -> None:
        await self._call("Remove", {"Name": name})


class FakeVolumePlugin:
    """Directories under `root` stand in for volumes; it records who mounts what."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.options: dict[str, dict[str, str]] = {}
        self.mounts: dict[str, set[str]] = {}
        self.refuse: dict[str, str] = {}  # volume -> the Err its Mount answers

    async def create(self, name: str, options: dict[str, str]) -> None:
        self.options.setdefault(name, options)
        (self.root / name).mkdir(parents=True, exist_ok=True)

    async def mount(self, name: str, mount_id: str) -> Path:
        if name not in self.options:
            raise VolumeError(f"no such volume: {name}")
        if name in self.refuse:
            raise VolumeError(self.refuse[name])
        self.mounts.setdefault(name, set()).add(mount_id)
        return self.root / name

    async def unmount(self, name: str, mount_id: str) -> None:
        self.mounts.get(name, set()).discard(mount_id)

    async def names(self) -> list[str]:
        return sorted(self.options)

    async def remove(self, name: str) -> None:
        if self.mounts.get(name):
            raise VolumeError(f"volume {name} is in use")
        self.options.pop(name, None)
        self.mounts.pop(name, None)


class TaskVolumes:
    def __init__(self, plugin: VolumePlugin) -> None:
        self.plugin = plugin
        self.records: dict[str, Obj] = {}  # volume name -> the store's record

    def learn(self, volumes: list[Obj]) -> None:
        """What the dispatcher sent about the volumes of this node's tasks."""
        self.records = {str(v.get("Name")): v for v in volumes}

    def exclusive(self, task: Obj) -> bool:
        """Does the task mount a distributed volume read-write that only one
        node may mount at a time?"""
        return any(needs_one_node(m, self.records) for _, _, m in volume_mounts(task))

    async def prepare(self, task: Obj) -> dict[str, str]:
        """Every volume of the task created and mounted: volume name -> where
        it is on this host. On failure nothing stays mounted."""
        paths: dict[str, str] = {}
        try:
            for _, name, mount in volume_mounts(task):
                if name in paths:
                    continue
                await self.plugin.create(name, create_options(mount, self.records.get(name)))
                paths[name] = str(await self.plugin.mount(name, task["ID"]))
        except VolumeError:
            await self._unmount(paths, task["ID"])
            raise
        return paths

    async def release(self, task: Obj) -> None:
        """The task's container has stopped: give its volumes back."""
        await self._unmount({name for _, name, _ in volume_mounts(task)}, task["ID"])

    async def release_unknown(self, task_id: str) -> None:
        """Give back whatever a task this agent knows nothing of (a container
        left from before a restart) may hold: asks volumed for every volume."""
        await self._unmount(await self.plugin.names(), task_id)

    async def forget(self, task: Obj) -> None:
        """The task left the cluster: its anonymous volumes go too."""
        for name in anonymous_volumes(task):
            with contextlib.suppress(VolumeError):  # never created: nothing to remove
                await self.plugin.unmount(name, task["ID"])
                await self.plugin.remove(name)

    async def _unmount(self, names: Iterable[str], task_id: str) -> None:
        for name in names:
            with contextlib.suppress(VolumeError):
                await self.plugin.unmount(name, task_id)
