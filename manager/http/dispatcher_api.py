"""The agents' endpoints: register, heartbeat, assignments, status.

An agent is the node its certificate names: a node's requests speak for that
node only, whatever their body says. (An admin, e.g. a test, names the node.)"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from api.task import TaskState
from api.volume_mounts import described, named_volume_mounts
from manager.allocator.apply import with_ingress_address
from manager.dispatcher import Dispatcher
from manager.http.context import context
from manager.http.forward import forward_to_leader
from manager.http.framework import APIError, add_route, bad_request, json_response, read_json
from manager.http.identity import caller
from manager.http.networks import write_allocating
from manager.http.secrets import data_of
from manager.http.swarm import require_cluster
from manager.orchestrator.plan import desired_running, state_rank
from manager.secret_box import SecretBox
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj


class DispatcherRef:
    """The current term's dispatcher (a new leader term starts a new one)."""

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None


DISPATCHER: web.AppKey[DispatcherRef] = web.AppKey("dispatcher")
LONG_POLL_SECONDS = 10.0


def node_of(request: web.Request, named: object) -> str:
    """The calling node: its certificate's, or the one an admin names."""
    identity = caller(request)
    if identity.role in ("worker", "manager") and identity.node_id:
        return identity.node_id
    if not named:
        raise bad_request("which node? an admin names it in NodeID")
    return str(named)


async def enroll_node(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid registration")
    cluster = ctx.store.view(require_cluster)
    node_id = node_of(request, body.get("NodeID"))
    role = caller(request).role if caller(request).role in ("worker", "manager") else "worker"
    description = body.get("Description") or {}
    description["TLSInfo"] = dict(cluster.get("TLSInfo") or {})

    def enroll(tx: WriteTx) -> str:
        node = tx.get("node", node_id)
        status = {"State": "ready", "Message": "", "Addr": str(body.get("Addr") or "")}
        # Where the node's agent serves its own API (images, builds), if it does.
        agent_api = str(body.get("APIAddr") or "")
        if node is None:
            new_node = {
                "ID": node_id,
                "Agent": True,
                "AgentAPI": agent_api,
                "Description": description,
                "Spec": {"Labels": {}, "Role": role, "Availability": "active"},
                "Status": status,
            }
            tx.create("node", with_ingress_address(tx, new_node))
            return node_id
        node.update(Agent=True, AgentAPI=agent_api, Description=description, Status=status)
        tx.update("node", with_ingress_address(tx, node), check_version=False)
        return str(node["ID"])

    node_id = await write_allocating(ctx.store, enroll)
    return json_response({"NodeID": node_id})


def _dispatcher(request: web.Request) -> Dispatcher:
    ref = request.app.get(DISPATCHER)
    if ref is None or ref.dispatcher is None:
        raise APIError(503, "this manager's dispatcher is not running yet")
    return ref.dispatcher


async def heartbeat(request: web.Request) -> web.Response:
    if not context(request).manager.leadership.is_leader():
        return await forward_to_leader(request)  # heartbeats count on the leader only
    body = await read_json(request)
    node_id = node_of(request, body.get("NodeID"))
    period = await _dispatcher(request).heartbeat(node_id)
    node, managers = context(request).store.view(
        lambda tx: (tx.get("node", node_id) or {}, manager_addresses(tx.all("node")))
    )
    # The role the cluster wants: the agent renews its certificate when it differs.
    role = (node.get("Spec") or {}).get("Role") or ""
    return json_response({"Period": int(period * 1e9), "Role": role, "Managers": managers})


def manager_addresses(nodes: list[Obj]) -> list[str]:
    """Where the managers' APIs are now, so agents follow joins and departures."""
    return sorted(
        str(n["ManagerStatus"]["Addr"]) for n in nodes if (n.get("ManagerStatus") or {}).get("Addr")
    )


async def status(request: web.Request) -> web.Response:
    if not context(request).manager.leadership.is_leader():
        return await forward_to_leader(request)
    body = await read_json(request)
    updates = [(str(u["TaskID"]), dict(u["Status"])) for u in body.get("Updates") or []]
    await _dispatcher(request).report(node_of(request, body.get("NodeID")), updates)
    return json_response({})


async def assignments(request: web.Request) -> web.Response:
    """The node's tasks once the store moved past `index` (a long poll)."""
    ctx = context(request)
    node_id = node_of(request, request.query.get("node", ""))
    try:
        since = int(request.query.get("index", "0"))
    except ValueError:
        raise bad_request("index must be a number") from None
    if ctx.store.index <= since:
        changes = ctx.store.watch(since, frozenset({"task", "secret", "config", "volume"}))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LONG_POLL_SECONDS):
                async for change in changes:
                    if (change.object or {}).get("NodeID") == node_id or change.table != "task":
                        break
        await changes.aclose()

    def read(tx: ReadTx) -> Obj:
        found = tx.find("task", "node", node_id)
        # A global task names its node from birth; it is the node's only once
        # allocated and scheduled (its network addresses are in by then).
        tasks = [t for t in found if state_rank(t["Status"]["State"]) >= int(TaskState.ASSIGNED)]
        return {"Index": tx.index, "Tasks": tasks, **referenced(tx, tasks, ctx.secret_box)}

    return json_response(ctx.store.view(read))


def referenced(tx: ReadTx, tasks: list[Obj], box: SecretBox) -> Obj:
    """The secrets, configs and volumes of the node's tasks that still want to
    run, and only those: a node never learns a secret it has no use for.

    Volumes: {Name, Driver, Options} of each named volume they mount, as the
    store records it, so the node's volumed creates it with the cluster's
    settings (a mount whose volume has no record: as the mount names it)."""
    wanted: dict[str, set[str]] = {"secret": set(), "config": set()}
    mounts: dict[str, Obj] = {}
    for task in tasks:
        if not desired_running(task):
            continue
        spec = task.get("Spec") or {}
        container = spec.get("ContainerSpec") or {}
        wanted["secret"] |= {str(r.get("SecretID")) for r in container.get("Secrets") or []}
        wanted["config"] |= {str(r.get("ConfigID")) for r in container.get("Configs") or []}
        mounts |= {str(m["Source"]): m for m in named_volume_mounts(spec)}
    found: dict[str, list[Obj]] = {"secret": [], "config": []}
    for table, ids in wanted.items():
        for object_id in sorted(ids):
            obj = tx.get(table, object_id)
            if obj is not None:
                found[table].append({"ID": obj["ID"], "Data": data_of(box, obj)})
    volumes = [described(mounts[name], tx.get("volume", name)) for name in sorted(mounts)]
    return {"Secrets": found["secret"], "Configs": found["config"], "Volumes": volumes}


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/shoal/dispatcher/register", enroll_node)
    add_route(router, "POST", "/shoal/dispatcher/heartbeat", heartbeat)
    add_route(router, "POST", "/shoal/dispatcher/status", status)
    add_route(router, "GET", "/shoal/dispatcher/assignments", assignments)
