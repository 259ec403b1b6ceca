"""Volumes as /volumes serves them; Go always writes Labels and Options."""

from __future__ import annotations

import msgspec

from api.base import Obj, always, always_new


class VolumeUsageData(msgspec.Struct, rename="pascal"):
    ref_count: int = -1  # -1: not computed, as Docker reports it
    size: int = -1


class Volume(Obj):
    name: str = always("")
    driver: str = always("local")
    mountpoint: str = always("")
    created_at: str = ""
    status: dict[str, object] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = always_new(dict)
    scope: str = always("local")
    options: dict[str, str] = always_new(dict)
    usage_data: VolumeUsageData | None = None


class VolumeCreateRequest(Obj):
    name: str = ""
    driver: str = always("local")
    driver_opts: dict[str, str] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = always_new(dict)


class VolumeListResponse(Obj):
    volumes: list[Volume] = always_new(list)
    warnings: list[str] = always_new(list)
