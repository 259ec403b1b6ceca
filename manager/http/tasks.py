"""/tasks: list with Docker's filters (including the CLI's `_up-to-date`), inspect."""

from __future__ import annotations

from aiohttp import web

from manager.http.context import context
from manager.http.framework import APIError, add_route, json_response, parse_filters
from manager.http.lookup import resolve
from manager.http.swarm import require_cluster
from manager.store.store import ReadTx
from manager.store.tables import Obj

TASK_FILTERS = {"desired-state", "id", "label", "name", "node", "service", "_up-to-date", "runtime"}
DESIRED_STATES = {"running", "shutdown", "accepted", "ready", "complete", "remove"}


def task_name(tx: ReadTx, task: Obj) -> str:
    service = tx.get("service", task.get("ServiceID", "")) or {}
    name = (service.get("Spec") or {}).get("Name") or task.get("ServiceID", "")
    mode = (service.get("Spec") or {}).get("Mode") or {}
    # Global tasks are named by node; replicated jobs number their slots from 0.
    slot = task.get("Slot") if "ReplicatedJob" in mode else task.get("Slot") or task.get("NodeID")
    return f"{name}.{slot}"


def _ids(tx: ReadTx, table: str, refs: list[str]) -> set[str]:
    """Filter values may be IDs, names or prefixes (Terraform passes names)."""
    ids: set[str] = set()
    for ref in refs:
        try:
            found = resolve(tx, table, ref)
        except APIError:
            continue
        ids.add(found.get("ID") or "")
    return ids


def _node_ids(tx: ReadTx, refs: list[str]) -> set[str]:
    """Docker takes a node's ID, a prefix of it, or its name (hostname)."""
    ids: set[str] = set()
    for ref in refs:
        named = [
            n["ID"]
            for n in tx.all("node")
            if ref
            in ((n.get("Spec") or {}).get("Name"), (n.get("Description") or {}).get("Hostname"))
        ]
        ids |= set(named) or _ids(tx, "node", [ref]) or {ref}
    return ids


def select(tx: ReadTx, filters: dict[str, list[str]]) -> list[Obj]:
    if "node" in filters:
        filters = dict(filters, node=sorted(_node_ids(tx, filters["node"])))
    if "service" in filters:
        candidates = [
            t
            for sid in _ids(tx, "service", filters["service"])
            for t in tx.find("task", "service", sid)
        ]
    elif "node" in filters:
        candidates = [t for node in filters["node"] for t in tx.find("task", "node", node)]
    else:
        candidates = tx.all("task")
    result = []
    for task in candidates:
        if "id" in filters and not any(task["ID"].startswith(v) for v in filters["id"]):
            continue
        if "node" in filters and task.get("NodeID") not in filters["node"]:
            continue
        if "desired-state" in filters and task.get("DesiredState") not in filters["desired-state"]:
            continue
        if "name" in filters and not any(
            task_name(tx, task).startswith(v) for v in filters["name"]
        ):
            continue
        if "_up-to-date" in filters:
            # Up to date = made from the service's current task template (as
            # swarmkit's IsTaskDirty); a scale changes no task's spec.
            service = tx.get("service", task.get("ServiceID", "")) or {}
            if task.get("Spec") != (service.get("Spec") or {}).get("TaskTemplate"):
                continue
        if "label" in filters:
            labels = task.get("Labels") or {}
            if not all(lbl.partition("=")[0] in labels for lbl in filters["label"]):
                continue
        result.append(task)
    return result


# The orchestrator's bookkeeping on a task (spec version, restart times, when
# it first ran, the rolling update that made it): not part of Docker's Task.
PRIVATE_TASK_FIELDS = frozenset({"SpecVersion", "Restarts", "RunningAt", "UpdateStartedAt"})


def public(tx: ReadTx, task: Obj) -> Obj:
    shown = {k: v for k, v in task.items() if k not in PRIVATE_TASK_FIELDS}
    shown.setdefault("Labels", {})
    return shown


async def list_tasks(request: web.Request) -> web.Response:
    ctx = context(request)
    filters = parse_filters(request, TASK_FILTERS)

    def read(tx: ReadTx) -> list[Obj]:
        require_cluster(tx)
        return [public(tx, t) for t in sorted(select(tx, filters), key=lambda t: t["ID"])]

    return json_response(ctx.store.view(read))


async def inspect(request: web.Request) -> web.Response:
    ctx = context(request)

    def read(tx: ReadTx) -> Obj:
        require_cluster(tx)
        return public(tx, resolve(tx, "task", request.match_info["id"]))

    return json_response(ctx.store.view(read))


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/tasks", list_tasks)
    add_route(router, "GET", "/tasks/{id}", inspect)
