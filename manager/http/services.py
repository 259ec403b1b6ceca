"""/services: create, list (with status), inspect, update, rollback, remove."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from api.base import now_time
from manager.allocator.endpoint import allocate_endpoint
from manager.allocator.ipam import IPAMError
from manager.http.context import context
from manager.http.framework import (
    APIError,
    add_route,
    bad_request,
    json_response,
    parse_filters,
    query_bool,
    read_json,
    required_version,
)
from manager.http.lookup import matches_filters, new_id, resolve
from manager.http.networks import write_allocating
from manager.http.service_spec import normalize_service_spec, resolve_networks
from manager.http.swarm import require_cluster
from manager.http.volumes import create_mount_volumes
from manager.http.writes import write
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj

SERVICE_FILTERS = {"id", "label", "mode", "name", "runtime"}


def mode_of(spec: dict[str, Any]) -> str:
    mode = spec.get("Mode") or {}
    for key, name in (
        ("Replicated", "replicated"),
        ("Global", "global"),
        ("ReplicatedJob", "replicated-job"),
        ("GlobalJob", "global-job"),
    ):
        if key in mode:
            return name
    return "replicated"


# Bookkeeping on a service that Docker's Service does not show: the version of
# the spec its tasks are stamped with (and of the previous spec, which returns
# on rollback), and the highest version ever issued.
PRIVATE_SERVICE_FIELDS = frozenset({"SpecVersion", "PreviousSpecVersion", "SpecVersionsIssued"})


def public(service: Obj) -> Obj:
    return {k: v for k, v in service.items() if k not in PRIVATE_SERVICE_FIELDS}


def endpoint_for(tx: WriteTx, service_id: str, spec: dict[str, Any], old: Obj | None) -> Obj:
    """Ports and VIPs, allocated in the transaction that writes the spec."""
    try:
        return allocate_endpoint(tx, service_id, spec, old)
    except IPAMError as exc:
        raise bad_request(str(exc)) from None


def job_status(spec: Obj, iteration: int) -> Obj:
    """Jobs run once per iteration; the CLI follows the tasks of the current one."""
    mode = spec.get("Mode") or {}
    if "ReplicatedJob" not in mode and "GlobalJob" not in mode:
        return {}
    return {"JobStatus": {"JobIteration": {"Index": iteration}, "LastExecution": now_time()}}


def service_status(tx: ReadTx, service: Obj) -> dict[str, int]:
    tasks = tx.find("task", "service", service["ID"])
    running = sum(1 for t in tasks if (t.get("Status") or {}).get("State") == "running")
    mode = service["Spec"].get("Mode") or {}
    if "Replicated" in mode:
        desired = int(mode["Replicated"].get("Replicas") or 0)
    else:
        desired = sum(1 for t in tasks if t.get("DesiredState") == "running")
    completed = sum(1 for t in tasks if (t.get("Status") or {}).get("State") == "complete")
    return {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": completed}


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    spec = normalize_service_spec(await read_json(request))
    service_id = new_id()
    if not spec.get("Name"):
        spec["Name"] = f"service-{service_id[:8]}"

    def create_service(tx: WriteTx) -> None:
        require_cluster(tx)
        resolve_networks(tx, spec)
        create_mount_volumes(tx, spec["TaskTemplate"])
        tx.create(
            "service",
            {
                "ID": service_id,
                "Spec": spec,
                "SpecVersion": 1,
                "Endpoint": endpoint_for(tx, service_id, spec, None),
                **job_status(spec, 1),
            },
        )

    await write_allocating(ctx.store, create_service)
    return json_response({"ID": service_id}, status=201)


async def list_services(request: web.Request) -> web.Response:
    ctx = context(request)
    filters = parse_filters(request, SERVICE_FILTERS)
    with_status = query_bool(request, "status")

    def read(tx: ReadTx) -> list[Obj]:
        require_cluster(tx)
        result = []
        for service in tx.all("service"):
            if not matches_filters(service, "service", filters):
                continue
            if "mode" in filters and mode_of(service["Spec"]) not in filters["mode"]:
                continue
            shown = public(service)
            if with_status:
                shown["ServiceStatus"] = service_status(tx, service)
            result.append(shown)
        return sorted(result, key=lambda s: s["ID"])

    return json_response(ctx.store.view(read))


async def inspect(request: web.Request) -> web.Response:
    ctx = context(request)

    def read(tx: ReadTx) -> Obj:
        require_cluster(tx)
        return public(resolve(tx, "service", request.match_info["id"]))

    return json_response(ctx.store.view(read))


async def update(request: web.Request) -> web.Response:
    ctx = context(request)
    version = required_version(request, "service")
    rollback = request.query.get("rollback") == "previous"
    body = await read_json(request)
    new_spec = None if rollback else normalize_service_spec(body)

    def change(tx: WriteTx) -> None:
        service = resolve(tx, "service", request.match_info["id"])
        old = service["Spec"]
        if rollback:
            if not service.get("PreviousSpec"):
                raise bad_request(f"service {service['ID']} does not have a previous spec")
            spec = copy.deepcopy(service["PreviousSpec"])
        else:
            assert new_spec is not None
            spec = new_spec
            spec["Name"] = spec.get("Name") or old.get("Name")
        if spec.get("Name") != old.get("Name"):
            raise APIError(501, "renaming services is not supported")
        if mode_of(spec) != mode_of(old):
            raise APIError(501, "service mode change is not allowed")
        resolve_networks(tx, spec)
        create_mount_volumes(tx, spec["TaskTemplate"])  # a rollback's volumes may be gone
        issued = int(service.get("SpecVersionsIssued") or service.get("SpecVersion") or 1) + 1
        current_version = service.get("SpecVersion", 1)
        service["Version"] = {"Index": version}
        service["PreviousSpec"] = old
        service["Spec"] = spec
        service["SpecVersionsIssued"] = issued
        # As swarmkit: a rollback brings the previous spec's version back, so
        # the tasks still on it are up to date again.
        previous_version = service.get("PreviousSpecVersion") if rollback else None
        service["SpecVersion"] = previous_version or issued
        service["PreviousSpecVersion"] = current_version
        service["Endpoint"] = endpoint_for(tx, service["ID"], spec, service.get("Endpoint"))
        service.update(job_status(spec, issued))  # a changed job runs again
        service.pop("UpdateStatus", None)
        if rollback:
            service["UpdateStatus"] = {
                "State": "rollback_started",
                "StartedAt": now_time(),
                "Message": "manually requested rollback",
            }
        tx.update("service", service)

    await write_allocating(ctx.store, change)
    return json_response({"Warnings": []})


async def remove(request: web.Request) -> web.Response:
    ctx = context(request)

    def delete(tx: WriteTx) -> None:
        service = resolve(tx, "service", request.match_info["id"])
        tx.delete("service", service["ID"])

    await write(ctx.store, delete)
    return web.Response(status=200)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/services/create", create)
    add_route(router, "GET", "/services", list_services)
    add_route(router, "GET", "/services/{id}", inspect)
    add_route(router, "POST", "/services/{id}/update", update)
    add_route(router, "DELETE", "/services/{id}", remove)
