"""/networks: swarm-scoped overlay networks, each with its subnet, gateway and
VNI allocated in the transaction that creates it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from manager.allocator.ipam import IPAMError
from manager.allocator.networks import network_object, plan_ipam, pools_of
from manager.allocator.usage import ingress_network, taken_subnets, tasks_holding, used_vnis
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
from manager.http.writes import OUT_OF_SEQUENCE, write
from manager.store.store import ReadTx, Store, WriteTx
from manager.store.tables import Obj

NETWORK_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PREDEFINED = {"ingress"}
ALLOCATION_ATTEMPTS = 3
T = TypeVar("T")


async def write_allocating(store: Store, fn: Callable[[WriteTx], T]) -> T:
    """A write that allocates: it rewrites the objects it allocated from (the
    cluster, networks) at the version it read, so a concurrent allocation from
    the same snapshot conflicts instead of handing something out twice. Such a
    conflict is another writer's doing: try again on fresh state."""
    for _ in range(ALLOCATION_ATTEMPTS - 1):
        try:
            return await write(store, fn)
        except APIError as exc:
            if exc.message != OUT_OF_SEQUENCE:
                raise
    return await write(store, fn)


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
        cluster = require_cluster(tx)
        if tx.by_name("network", body["Name"]) is not None:
            raise APIError(409, f"network with name {body['Name']} already exists")
        if body.get("Ingress") and (present := ingress_network(tx)) is not None:
            raise APIError(
                409,
                "rpc error: code = AlreadyExists desc = ingress network "
                f"({present['Id']}) is already present",
            )
        pools, size = pools_of(cluster)
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        try:
            ipam, options = plan_ipam(
                body.get("IPAM"), options, pools, size, taken_subnets(tx), used_vnis(tx)
            )
        except IPAMError as exc:
            raise bad_request(str(exc)) from None
        tx.create(
            "network",
            network_object(
                network_id,
                body["Name"],
                ipam,
                options,
                EnableIPv6=body.get("EnableIPv6"),
                Internal=body.get("Internal"),
                Attachable=body.get("Attachable"),
                Ingress=body.get("Ingress"),
                Labels=body.get("Labels"),
            ),
        )
        # Rewriting the cluster at the version read makes two creates that
        # picked from the same snapshot conflict, so no subnet or VNI is given twice.
        tx.update("cluster", cluster)

    await write_allocating(ctx.store, make)
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
        # Tasks of an earlier spec may still run on it (a rolling update).
        holders = tasks_holding(tx, network["Id"])
        if holders:
            raise APIError(
                400,
                f"rpc error: code = FailedPrecondition desc = network {network['Id']} is in use "
                f"by task {holders[0]}",
            )
        tx.delete("network", network["Id"])

    await write(ctx.store, delete)
    return web.Response(status=204)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/networks/create", create)
    add_route(router, "GET", "/networks", list_networks)
    add_route(router, "GET", "/networks/{id}", inspect)
    add_route(router, "DELETE", "/networks/{id}", remove)
