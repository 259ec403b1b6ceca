"""Managers joining a cluster: a newcomer that holds a manager certificate
(which it got for the manager join token) is added to Raft by the leader and
told the members and the cluster's Raft key, over mutual TLS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from manager.http.context import context
from manager.http.forward import forward_to_leader
from manager.http.framework import APIError, add_route, bad_request, json_response, read_json
from manager.http.identity import caller
from manager.http.swarm import require_cluster
from manager.http.writes import write

AddMember = Callable[[str], Awaitable[None]]
MEMBERSHIP = web.AppKey("membership", object)
# Removes a manager from Raft (demotion); absent when the state is in etcd.
MEMBERSHIP_REMOVE: web.AppKey[AddMember] = web.AppKey("membership_remove")


async def join_manager(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid join request")
    ctx.store.view(require_cluster)
    if caller(request).role != "manager":
        raise APIError(
            403,
            "only a node with a manager certificate joins as a manager: use the manager join token",
        )
    if not ctx.manager.leadership.is_leader():
        return await forward_to_leader(request)
    if MEMBERSHIP not in request.app:
        raise bad_request(
            "this cluster keeps its state in etcd: start the manager with "
            "--store etcd and the same --etcd-endpoints instead of joining"
        )
    add_member: AddMember = request.app[MEMBERSHIP]  # type: ignore[assignment]
    raft_addr = str(body.get("RaftAddr") or "")
    if not raft_addr:
        raise bad_request("a joining manager must give its Raft address")
    members = ctx.store.view(
        lambda tx: [str(n["RaftAddr"]) for n in tx.all("node") if n.get("RaftAddr")]
    )
    # The change commits only once the newcomer runs Raft, so it cannot be
    # awaited here: the newcomer starts with these members and registers its
    # node object itself once it is in.
    await add_member(raft_addr)
    return json_response(
        {"Members": sorted({*members, raft_addr}), "RaftKey": request.app[RAFT_KEY]}
    )


RAFT_KEY = web.AppKey("raft_key", str)


async def leave_manager(request: web.Request) -> web.Response:
    """A manager leaving: out of Raft, and its node object gone (on the leader)."""
    ctx = context(request)
    if not ctx.manager.leadership.is_leader():
        return await forward_to_leader(request)
    body = await read_json(request)
    node_id, raft_addr = str(body.get("NodeID") or ""), str(body.get("RaftAddr") or "")
    node = ctx.store.view(lambda tx: tx.get("node", node_id))
    if node is None or node.get("RaftAddr") != raft_addr:
        raise APIError(404, f"node {node_id} is not a manager of this cluster")
    remove = request.app.get(MEMBERSHIP_REMOVE)
    if remove is None:
        raise bad_request("this cluster keeps its state in etcd")
    await remove(raft_addr)
    await write(ctx.store, lambda tx: tx.delete("node", node_id))
    return json_response({})


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/shoal/managers/join", join_manager)
    add_route(router, "POST", "/shoal/managers/leave", leave_manager)
