"""/networks: swarm-scoped overlay networks (addresses arrive with netd)."""

from __future__ import annotations

from aiohttp import web

from manager.http.context import context
from manager.http.framework import (
    APIError,
    add_route,
    bad_request,
    json_response,
    parse_filters,
    read_json,
)
from manager.http.lookup import matches_filters, new_id, resolve
from manager.http.swarm import require_cluster
from manager.http.writes import write
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj

NETWORK_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PREDEFINED = {"ingress"}


def public(network: Obj) -> Obj:
    shown = {k: v for k, v in network.items() if k not in ("Version", "CreatedAt", "UpdatedAt")}
    shown["Created"] = network.get("CreatedAt") or "0001-01-01T00:00:00Z"
    return shown


def users_of(tx: ReadTx, network_id: str) -> list[str]:
    return [
        s["Spec"].get("Name", s["ID"])
        for s in tx.all("service")
        if any(
            n.get("Target") == network_id
            for n in (s["Spec"].get("TaskTemplate") or {}).get("Networks") or []
        )
    ]


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not body.get("Name"):
        raise bad_request("network name must be given")
    driver = body.get("Driver") or "overlay"
    if driver != "overlay":
        raise bad_request(f"network driver {driver!r} is not supported: use overlay")
    network_id = new_id()

    def make(tx: WriteTx) -> None:
        require_cluster(tx)
        if tx.by_name("network", body["Name"]) is not None:
            raise APIError(409, f"network with name {body['Name']} already exists")
        tx.create(
            "network",
            {
                "Name": body["Name"],
                "Id": network_id,
                "Scope": "swarm",
                "Driver": driver,
                "EnableIPv6": bool(body.get("EnableIPv6")),
                "IPAM": body.get("IPAM") or {"Driver": "default", "Options": None, "Config": []},
                "Internal": bool(body.get("Internal")),
                "Attachable": bool(body.get("Attachable")),
                "Ingress": bool(body.get("Ingress")),
                "ConfigFrom": {"Network": ""},
                "ConfigOnly": False,
                "Containers": {},
                "Options": body.get("Options") or {},
                "Labels": body.get("Labels") or {},
            },
        )

    await write(ctx.store, make)
    return json_response({"Id": network_id, "Warning": ""}, status=201)


async def list_networks(request: web.Request) -> web.Response:
    ctx = context(request)
    filters = parse_filters(request, NETWORK_FILTERS)

    def read(tx: ReadTx) -> list[Obj]:
        require_cluster(tx)
        result = []
        for network in tx.all("network"):
            if not matches_filters(network, "network", filters):
                continue
            if "driver" in filters and network["Driver"] not in filters["driver"]:
                continue
            if "scope" in filters and network["Scope"] not in filters["scope"]:
                continue
            if "type" in filters and "custom" not in filters["type"]:
                continue
            result.append(public(network))
        return sorted(result, key=lambda n: n["Name"])

    return json_response(ctx.store.view(read))


async def inspect(request: web.Request) -> web.Response:
    ctx = context(request)
    found = ctx.store.view(lambda tx: resolve(tx, "network", request.match_info["id"]))
    return json_response(public(found))


async def remove(request: web.Request) -> web.Response:
    ctx = context(request)

    def delete(tx: WriteTx) -> None:
        network = resolve(tx, "network", request.match_info["id"])
        if network["Name"] in PREDEFINED:
            raise APIError(403, f"{network['Name']} is a pre-defined network and cannot be removed")
        users = users_of(tx, network["Id"])
        if users:
            raise APIError(
                400,
                f"rpc error: code = FailedPrecondition desc = network {network['Id']} is in use "
                f"by service {users[0]}",
            )
        tx.delete("network", network["Id"])

    await write(ctx.store, delete)
    return web.Response(status=204)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/networks/create", create)
    add_route(router, "GET", "/networks", list_networks)
    add_route(router, "GET", "/networks/{id}", inspect)
    add_route(router, "DELETE", "/networks/{id}", remove)
