"""The agents' endpoints: register, heartbeat, assignments, status.

(Until the cluster CA exists the join token authenticates an agent; then
these endpoints will want a node certificate.)"""

from __future__ import annotations

import asyncio
import contextlib
import hmac

from aiohttp import web

from manager.dispatcher import Dispatcher
from manager.http.context import context
from manager.http.forward import forward_to_leader
from manager.http.framework import APIError, add_route, bad_request, json_response, read_json
from manager.http.lookup import new_id
from manager.http.swarm import require_cluster
from manager.http.writes import write
from manager.store.store import WriteTx
from manager.store.tables import Obj


class DispatcherRef:
    """The current term's dispatcher (a new leader term starts a new one)."""

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None


DISPATCHER: web.AppKey[DispatcherRef] = web.AppKey("dispatcher")
LONG_POLL_SECONDS = 10.0


def _token_role(cluster: Obj, token: str) -> str | None:
    tokens = cluster.get("JoinTokens") or {}
    for role, key in (("worker", "Worker"), ("manager", "Manager")):
        expected = str(tokens.get(key) or "")
        if token and expected and hmac.compare_digest(token.encode(), expected.encode()):
            return role
    return None


async def enroll_node(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid registration")
    cluster = ctx.store.view(require_cluster)
    if _token_role(cluster, str(body.get("JoinToken") or "")) is None:
        raise APIError(
            400,
            "rpc error: code = InvalidArgument desc = A valid join token is "
            "necessary to join this cluster",
        )
    wanted = str(body.get("NodeID") or "")
    description = body.get("Description") or {}

    def enroll(tx: WriteTx) -> str:
        node = tx.get("node", wanted) if wanted else None
        status = {"State": "ready", "Message": "", "Addr": str(body.get("Addr") or "")}
        if node is None:
            node_id = wanted or new_id()
            tx.create(
                "node",
                {
                    "ID": node_id,
                    "Agent": True,
                    "Description": description,
                    "Spec": {"Labels": {}, "Role": "worker", "Availability": "active"},
                    "Status": status,
                },
            )
            return node_id
        node.update(Agent=True, Description=description, Status=status)
        tx.update("node", node, check_version=False)
        return str(node["ID"])

    node_id = await write(ctx.store, enroll)
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
    period = await _dispatcher(request).heartbeat(str(body.get("NodeID") or ""))
    return json_response({"Period": int(period * 1e9)})


async def status(request: web.Request) -> web.Response:
    if not context(request).manager.leadership.is_leader():
        return await forward_to_leader(request)
    body = await read_json(request)
    updates = [(str(u["TaskID"]), dict(u["Status"])) for u in body.get("Updates") or []]
    await _dispatcher(request).report(str(body.get("NodeID") or ""), updates)
    return json_response({})


async def assignments(request: web.Request) -> web.Response:
    """The node's tasks once the store moved past `index` (a long poll)."""
    ctx = context(request)
    node_id = request.query.get("node", "")
    try:
        since = int(request.query.get("index", "0"))
    except ValueError:
        raise bad_request("index must be a number") from None
    if ctx.store.index <= since:
        changes = ctx.store.watch(since, frozenset({"task", "secret", "config"}))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LONG_POLL_SECONDS):
                async for change in changes:
                    if (change.object or {}).get("NodeID") == node_id or change.table != "task":
                        break
        await changes.aclose()
    index, tasks = ctx.store.view(lambda tx: (tx.index, tx.find("task", "node", node_id)))
    return json_response({"Index": index, "Tasks": tasks})


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/shoal/dispatcher/register", enroll_node)
    add_route(router, "POST", "/shoal/dispatcher/heartbeat", heartbeat)
    add_route(router, "POST", "/shoal/dispatcher/status", status)
    add_route(router, "GET", "/shoal/dispatcher/assignments", assignments)
