"""Volumes as volumed knows them: what a Create asked for (validated), who
mounts each one, and the state file that carries both over a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from api.volume_options import VolumeOptionsError, normalize_volume_options, validate_volume_name

DEFAULT_DRIVER = "shoal"  # the name Docker knows this plugin by


class VolumeError(Exception):
    """A request volumed refuses; the message is the plugin protocol's Err."""


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    created_at: str  # RFC 3339, UTC
    replication: str = ""  # shoal only
    sharing: str = "none"  # shoal only: all lets several users mount it read-write
    mounts: tuple[str, ...] = ()  # the IDs (containers, tasks) that mounted it, sorted

    @property
    def in_use(self) -> bool:
        return bool(self.mounts)

    def with_mount(self, mount_id: str) -> Volume:
        return replace(self, mounts=tuple(sorted({*self.mounts, mount_id})))

    def without_mount(self, mount_id: str) -> Volume:
        return replace(self, mounts=tuple(m for m in self.mounts if m != mount_id))

    def status(self) -> dict[str, str]:
        status = {"Driver": self.driver, "Mounts": str(len(self.mounts))}
        if self.driver == "shoal":
            status |= {"Replication": self.replication, "Sharing": self.sharing}
        return status


def validate_name(name: object) -> str:
    try:
        return validate_volume_name(name)
    except VolumeOptionsError as exc:
        raise VolumeError(exc.message) from None


def new_volume(name: object, options: Mapping[str, object] | None, created_at: str) -> Volume:
    """The volume a Create asks for, or a VolumeError saying what is wrong.

    The rules are the manager's too (api.volume_options); `driver` in the
    options picks the driver and is not passed on."""
    name = validate_name(name)
    opts = dict(options or {})
    driver = str(opts.pop("driver", DEFAULT_DRIVER))
    try:
        normalized = normalize_volume_options(driver, opts)
    except VolumeOptionsError as exc:
        raise VolumeError(exc.message) from None
    if driver == "local":
        return Volume(name=name, driver=driver, created_at=created_at)
    replication, sharing = normalized["replication"], normalized["sharing"]
    return Volume(name, driver, created_at, replication=replication, sharing=sharing)


def same_request(existing: Volume, wanted: Volume) -> bool:
    """Docker repeats Create for a volume that exists; that is fine as long as
    it asks for the same thing."""
    return (existing.driver, existing.replication, existing.sharing) == (
        wanted.driver,
        wanted.replication,
        wanted.sharing,
    )


def save_volumes(path: Path, volumes: Mapping[str, Volume]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(v) for v in volumes.values()], indent=1))
    tmp.replace(path)  # a crash leaves the old file or the new one, never half


def load_volumes(path: Path) -> dict[str, Volume]:
    if not path.exists():
        return {}
    loaded = {}
    for item in json.loads(path.read_text()):
        volume = Volume(**{**item, "mounts": tuple(item.get("mounts", ()))})
        loaded[volume.name] = volume
    return loaded
