"""/volumes: volume metadata in the cluster store (volumed mounts them later)."""

from __future__ import annotations

from aiohttp import web

from manager.http.context import context
from manager.http.framework import (
    APIError,
    add_route,
    bad_request,
    json_response,
    parse_filters,
    query_bool,
    read_json,
)
from manager.http.swarm import require_cluster
from manager.http.writes import write
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj

VOLUME_FILTERS = {"dangling", "driver", "label", "name"}
DRIVERS = {"local", "shoal"}


def public(volume: Obj) -> Obj:
    return {k: v for k, v in volume.items() if k not in ("Version", "UpdatedAt")}


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid volume create request")
    name = str(body.get("Name") or "")
    if not name:
        raise bad_request("a volume needs a name")
    driver = body.get("Driver") or "local"
    if driver not in DRIVERS:
        raise bad_request(f"volume driver {driver!r} is not known (local or shoal)")

    def make(tx: WriteTx) -> Obj:
        require_cluster(tx)
        existing = tx.get("volume", name)
        if existing is not None:
            return existing  # Docker: creating an existing volume returns it
        volume = {
            "Name": name,
            "Driver": driver,
            "Mountpoint": "",
            "Labels": body.get("Labels") or {},
            "Scope": "global",
            "Options": body.get("DriverOpts") or {},
        }
        tx.create("volume", volume)
        return volume

    return json_response(public(await write(ctx.store, make)), 201)


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

    def delete(tx: WriteTx) -> None:
        if tx.get("volume", name) is None:
            if force:
                return
            raise APIError(404, f"get {name}: no such volume")
        tx.delete("volume", name)

    await write(ctx.store, delete)
    return web.Response(status=204)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/volumes/create", create)
    add_route(router, "GET", "/volumes", list_volumes)
    add_route(router, "GET", "/volumes/{name}", inspect)
    add_route(router, "DELETE", "/volumes/{name}", remove)
