"""What a volume may be asked for: its name, its driver and the driver's
options. The manager (/volumes/create, service mounts) and volumed (the
plugin's Create) check requests with the same rules, so a volume the manager
records is one every node's volumed accepts."""

from __future__ import annotations

import re
from collections.abc import Mapping

from api.errors import InvalidArgument

DRIVERS = ("local", "shoal")
DEFAULT_REPLICATION = "001"  # one more copy on another server of the same rack
SHARING = ("none", "all")
# Docker's rule for volume names; it also keeps names safe as path parts.
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# xyz: copies on other data centers, other racks, other servers of the rack.
_REPLICATION = re.compile(r"[0-9]{3}")
# The options each driver takes.
_OPTIONS = {"local": frozenset[str](), "shoal": frozenset({"replication", "sharing"})}


class VolumeOptionsError(InvalidArgument):
    """A volume request that no node would accept; the message says why (400)."""


def validate_volume_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise VolumeOptionsError(
            f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, "
            "at least 2 characters"
        )
    return name


def validate_replication(replication: str) -> str:
    if not _REPLICATION.fullmatch(replication):
        raise VolumeOptionsError(
            f"invalid replication {replication!r}: three digits xyz, copies on other "
            "data centers (x), other racks (y) and other servers of the same rack (z), "
            "e.g. 000 or 001"
        )
    return replication


def normalize_volume_options(
    driver: object, options: Mapping[str, object] | None
) -> dict[str, str]:
    """The driver's options with their defaults filled in, so a volume keeps
    the settings it was created with even if a default changes later."""
    if driver not in DRIVERS:
        raise VolumeOptionsError(f"unknown volume driver {driver!r}: use {' or '.join(DRIVERS)}")
    opts = {str(k): str(v) for k, v in (options or {}).items()}
    unknown = sorted(set(opts) - _OPTIONS[driver])
    if unknown:
        known = ", ".join(sorted(_OPTIONS[driver])) or "none"
        raise VolumeOptionsError(
            f"{driver} driver: unknown option(s) {', '.join(unknown)} (known: {known})"
        )
    if driver == "local":
        return {}
    sharing = opts.get("sharing", "none")
    if sharing not in SHARING:
        raise VolumeOptionsError(
            f"invalid sharing {sharing!r}: use none (one read-write user at a time) or all"
        )
    return {
        "replication": validate_replication(opts.get("replication", DEFAULT_REPLICATION)),
        "sharing": sharing,
    }


def mounted_alone(driver: str, options: Mapping[str, str]) -> bool:
    """A distributed volume not created shared is mounted read-write on one
    node at a time: two FUSE mounts writing the same files would corrupt them."""
    return driver == "shoal" and options.get("sharing", "none") != "all"


def scope_of(driver: str) -> str:
    """Docker's Scope: a shoal volume is the same everywhere, a local one per node."""
    return "global" if driver == "shoal" else "local"
