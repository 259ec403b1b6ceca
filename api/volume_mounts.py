"""How a task's mounts name volumes, read the same way by the managers (the
scheduler's one-node rule, the dispatcher, /volumes) and by the agent (what it
asks volumed to create and mount). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.volume_options import mounted_alone

Obj = dict[str, Any]
DEFAULT_DRIVER = "local"  # Docker's


def is_volume_mount(mount: Mapping[str, Any]) -> bool:
    return str(mount.get("Type") or "volume").lower() == "volume"


def named_volume_mounts(task_spec: Mapping[str, Any]) -> list[Obj]:
    """The mounts of named volumes in a TaskSpec (a task's Spec or a service's
    TaskTemplate). A volume mount without Source is anonymous: the node makes
    it for the container alone, so the cluster keeps no record of it."""
    container = task_spec.get("ContainerSpec") or {}
    return [m for m in container.get("Mounts") or [] if is_volume_mount(m) and m.get("Source")]


def mount_driver(mount: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The driver and options a mount names ("" when it names none)."""
    config = (mount.get("VolumeOptions") or {}).get("DriverConfig") or {}
    options = {str(k): str(v) for k, v in (config.get("Options") or {}).items()}
    return str(config.get("Name") or ""), options


def volume_driver(mount: Mapping[str, Any], record: Obj | None) -> tuple[str, dict[str, str]]:
    """Driver and options of a mount's volume: the store's record, else what
    the mount names (a task from before its volume had a record), else local."""
    if record is not None:
        driver = str(record.get("Driver") or "")
        options = {str(k): str(v) for k, v in (record.get("Options") or {}).items()}
    else:
        driver, options = mount_driver(mount)
    return driver or DEFAULT_DRIVER, options


def described(mount: Mapping[str, Any], record: Obj | None) -> Obj:
    """Name, Driver and Options of a named mount's volume."""
    driver, options = volume_driver(mount, record)
    return {"Name": str(mount["Source"]), "Driver": driver, "Options": options}


def needs_one_node(mount: Mapping[str, Any], records: Mapping[str, Obj]) -> bool:
    """Whether this mount may only be used on a node no other node shares
    the volume with: read-write, on a volume mounted alone."""
    if mount.get("ReadOnly") or not mount.get("Source"):
        return False
    return mounted_alone(*volume_driver(mount, records.get(str(mount["Source"]))))
