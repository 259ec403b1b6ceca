"""Volume records in the store ("volume" table, keyed by Name) and the
task mounts that name them. Pure: the HTTP handlers, the scheduler and the
dispatcher share these readings of a spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.volume_options import mounted_alone, scope_of

Obj = dict[str, Any]


def named_volume_mounts(task_spec: Mapping[str, Any]) -> list[Obj]:
    """The mounts of named volumes in a TaskSpec (a task's Spec or a service's
    TaskTemplate). A volume mount without Source is anonymous: the node makes
    it for the container alone, so the cluster keeps no record of it."""
    container = task_spec.get("ContainerSpec") or {}
    return [
        m
        for m in container.get("Mounts") or []
        if str(m.get("Type") or "volume").lower() == "volume" and m.get("Source")
    ]


def mount_driver(mount: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The driver and options a mount names ("" when it names none)."""
    config = (mount.get("VolumeOptions") or {}).get("DriverConfig") or {}
    options = {str(k): str(v) for k, v in (config.get("Options") or {}).items()}
    return str(config.get("Name") or ""), options


def new_record(name: str, driver: str, options: dict[str, str], labels: dict[str, str]) -> Obj:
    """A volume as /volumes shows it; Mountpoint is per node, so none here.
    The store stamps CreatedAt (RFC 3339) when it applies the creation."""
    return {
        "Name": name,
        "Driver": driver,
        "Mountpoint": "",
        "Labels": labels,
        "Scope": scope_of(driver),
        "Options": options,
    }


def described(mount: Mapping[str, Any], record: Obj | None) -> Obj:
    """Name, Driver and Options of a mount's volume: the store's record, else
    what the mount names (a task from before its volume had a record)."""
    if record is not None:
        driver, options = str(record.get("Driver") or "local"), dict(record.get("Options") or {})
    else:
        driver, options = mount_driver(mount)
    return {"Name": str(mount["Source"]), "Driver": driver or "local", "Options": options}


def needs_one_node(mount: Mapping[str, Any], records: Mapping[str, Obj]) -> bool:
    """Whether this mount may only be used on a node no other node shares
    the volume with: read-write, on a volume mounted alone."""
    if mount.get("ReadOnly"):
        return False
    volume = described(mount, records.get(str(mount["Source"])))
    return mounted_alone(volume["Driver"], volume["Options"])
