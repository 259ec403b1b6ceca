"""/volumes: volume metadata in the cluster store (volumed mounts them on
the nodes), and the volumes services name in their mounts, created on first
use."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.task import TaskState
from api.volume_mounts import DEFAULT_DRIVER, mount_driver, named_volume_mounts
from api.volume_options import (
    VolumeOptionsError,
    normalize_volume_options,
    scope_of,
    validate_volume_name,
)
from api.volume_plugin import VolumePluginError
from manager.http.context import context
from manager.http.framework import (
    APIError,
    add_route,
    bad_request,
    conflict,
    json_response,
    parse_filters,
    query_bool,
    read_json,
)
from manager.http.swarm import require_cluster
from manager.http.writes import write
from manager.orchestrator.plan import observed, state_rank
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj

VOLUME_FILTERS = {"dangling", "driver", "label", "name"}


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


def public(volume: Obj) -> Obj:
    return {k: v for k, v in volume.items() if k not in ("Version", "UpdatedAt")}


def users(tx: ReadTx, name: str) -> list[str]:
    """What keeps a volume in use: the services whose spec mounts it, then the
    tasks that mount it and have not ended (a task of a removed service may
    still be running on its node)."""
    services = sorted(
        s["ID"]
        for s in tx.all("service")
        if any(m["Source"] == name for m in named_volume_mounts(s["Spec"]["TaskTemplate"]))
    )
    tasks = sorted(
        t["ID"]
        for t in tx.all("task")
        if state_rank(observed(t)) <= int(TaskState.RUNNING)
        and any(m["Source"] == name for m in named_volume_mounts(t.get("Spec") or {}))
    )
    return services + tasks


def in_use(name: str, ids: list[str]) -> APIError:
    return conflict(f"remove {name}: volume is in use - [{' '.join(ids)}]")  # Go prints a slice so


def create_mount_volumes(tx: WriteTx, task_spec: dict[str, Any]) -> None:
    """The named volumes a service mounts, created in the transaction that
    writes its spec when they do not exist yet (Docker creates a volume on
    first use, with the mount's driver and options)."""
    for mount in named_volume_mounts(task_spec):
        name = str(mount["Source"])
        named, options = mount_driver(mount)
        existing = tx.get("volume", name)
        try:
            validate_volume_name(name)
            driver = named or (existing or {}).get("Driver") or DEFAULT_DRIVER
            if existing is not None and driver != existing["Driver"]:
                raise VolumeOptionsError(
                    f"volume {name} already exists with driver {existing['Driver']}, not {driver}"
                )
            normalized = normalize_volume_options(driver, options)
        except VolumeOptionsError as exc:
            raise bad_request(f'invalid mount config for type "volume": {exc.message}') from None
        if existing is None:
            labels = dict((mount.get("VolumeOptions") or {}).get("Labels") or {})
            tx.create("volume", new_record(name, driver, normalized, labels))


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid volume create request")
    if not body.get("Name"):
        raise bad_request("a volume needs a name")
    driver = str(body.get("Driver") or DEFAULT_DRIVER)
    try:
        name = validate_volume_name(body["Name"])
        options = normalize_volume_options(driver, body.get("DriverOpts"))
    except VolumeOptionsError as exc:
        raise bad_request(exc.message) from None

    def make(tx: WriteTx) -> None:
        require_cluster(tx)
        existing = tx.get("volume", name)
        if existing is None:
            tx.create("volume", new_record(name, driver, options, dict(body.get("Labels") or {})))
        elif existing["Driver"] != driver:  # Docker's errNameConflict
            raise conflict(f"create {name}: volume name must be unique")
        # else Docker answers with the volume that exists

    await write(ctx.store, make)
    volume = ctx.store.view(lambda tx: tx.get("volume", name))  # as stored, CreatedAt and all
    if volume is None:  # removed in the meantime
        raise APIError(404, f"get {name}: no such volume")
    return json_response(public(volume), 201)


async def list_volumes(request: web.Request) -> web.Response:
    ctx = context(request)
    filters = parse_filters(request, VOLUME_FILTERS)

    def read(tx: ReadTx) -> list[Obj]:
        require_cluster(tx)
        result = []
        for volume in tx.all("volume"):
            if "name" in filters and not any(v in volume["Name"] for v in filters["name"]):
                continue
            if "driver" in filters and volume["Driver"] not in filters["driver"]:
                continue
            if "dangling" in filters:
                dangling = any(v in ("true", "1") for v in filters["dangling"])
                if dangling == bool(users(tx, volume["Name"])):
                    continue
            result.append(public(volume))
        return sorted(result, key=lambda v: v["Name"])

    return json_response({"Volumes": ctx.store.view(read), "Warnings": []})


async def inspect(request: web.Request) -> web.Response:
    ctx = context(request)
    name = request.match_info["name"]
    volume = ctx.store.view(lambda tx: tx.get("volume", name))
    if volume is None:
        raise APIError(404, f"get {name}: no such volume")
    return json_response(public(volume))


async def remove(request: web.Request) -> web.Response:
    ctx = context(request)
    name = request.match_info["name"]
    force = query_bool(request, "force")

    def check(tx: ReadTx) -> Obj | None:
        volume = tx.get("volume", name)
        if volume is None:
            if force:
                return None
            raise APIError(404, f"get {name}: no such volume")
        ids = users(tx, name)
        if ids:
            raise in_use(name, ids)
        return volume

    volume = ctx.store.view(check)
    if volume is None:
        return web.Response(status=204)
    if volume["Driver"] == "shoal" and ctx.volume_data is not None:
        # The data goes first: a failure keeps the record, so the removal can
        # be asked again, rather than leaving data no record names.
        try:
            await ctx.volume_data.delete_data(name, "shoal", dict(volume.get("Options") or {}))
        except VolumePluginError as exc:
            raise APIError(500, f"remove {name}: {exc}") from None

    def delete(tx: WriteTx) -> None:
        if tx.get("volume", name) is not None:
            ids = users(tx, name)  # a service may have taken it up meanwhile
            if ids:
                raise in_use(name, ids)
            tx.delete("volume", name)

    await write(ctx.store, delete)
    return web.Response(status=204)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/volumes/create", create)
    add_route(router, "GET", "/volumes", list_volumes)
    add_route(router, "GET", "/volumes/{name}", inspect)
    add_route(router, "DELETE", "/volumes/{name}", remove)
