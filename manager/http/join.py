"""Managers joining a cluster: the leader checks the manager join token, adds
the newcomer to Raft and tells it the members and the cluster's Raft key.

(Mutual TLS between hosts arrives with the security work; until then the join
token is what authenticates a joining manager.)"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from manager.http.context import context
from manager.http.framework import APIError, add_route, bad_request, json_response, read_json
from manager.http.swarm import manager_node, require_cluster
from manager.http.writes import write
from manager.store.store import WriteTx

AddMember = Callable[[str], Awaitable[None]]
MEMBERSHIP = web.AppKey("membership", object)


def _token_ok(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


async def join_manager(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid join request")
    cluster = ctx.store.view(require_cluster)
    if not _token_ok(str(body.get("JoinToken") or ""), cluster["JoinTokens"]["Manager"]):
        raise APIError(
            400,
            "rpc error: code = InvalidArgument desc = A valid join token is "
            "necessary to join this cluster",
        )
    if not ctx.manager.leadership.is_leader():
        raise APIError(
            503, f"not the leader; the leader's Raft address is {ctx.manager.leadership.leader()}"
        )
    add_member: AddMember = request.app[MEMBERSHIP]  # type: ignore[assignment]
    node_id, raft_addr = str(body["NodeID"]), str(body["RaftAddr"])
    await add_member(raft_addr)
    newcomer = manager_node(ctx)
    newcomer.update(
        ID=node_id,
        RaftAddr=raft_addr,
        Description={**newcomer["Description"], "Hostname": str(body.get("Hostname") or "")},
        Status={"State": "ready", "Addr": str(body["AdvertiseAddr"]).rsplit(":", 1)[0]},
        ManagerStatus={"Reachability": "reachable", "Addr": str(body["AdvertiseAddr"])},
    )

    def register(tx: WriteTx) -> list[str]:
        if tx.get("node", node_id) is None:
            tx.create("node", newcomer)
        return [str(n["RaftAddr"]) for n in tx.all("node") if n.get("RaftAddr")]

    members = await write(ctx.store, register)
    return json_response({"Members": members, "RaftKey": request.app[RAFT_KEY]})


RAFT_KEY = web.AppKey("raft_key", str)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/shoal/managers/join", join_manager)
