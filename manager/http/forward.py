"""Requests only the leader can carry out (Raft membership changes, the
dispatcher's heartbeats) are passed on to it when they arrive at a follower,
over mutual TLS with this manager's certificate, saying who asked."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import aiohttp
from aiohttp import web

from manager.http.framework import APIError
from manager.http.identity import FORWARDED_NODE, FORWARDED_ROLE, caller

LeaderAPI = Callable[[], str | None]
LEADER_API: web.AppKey[LeaderAPI] = web.AppKey("leader_api")
# This manager's client TLS context (its own certificate); None until it has one.
PeerTLS = Callable[[], ssl.SSLContext | None]
PEER_TLS: web.AppKey[PeerTLS] = web.AppKey("peer_tls")


async def forward_to_leader(request: web.Request) -> web.Response:
    find = request.app.get(LEADER_API)
    address = find() if find is not None else None
    if address is None:
        raise APIError(503, "the cluster has no leader: a majority of managers is not reachable")
    tls = request.app.get(PEER_TLS)
    context = tls() if tls is not None else None
    if context is None:
        raise APIError(503, "this manager has no certificate yet to reach the leader with")
    body = await request.read()
    identity = caller(request)
    headers = {
        "Content-Type": "application/json",
        FORWARDED_ROLE: identity.role,
        FORWARDED_NODE: identity.node_id,
    }
    url = f"https://{address}{request.rel_url}"
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(request.method, url, data=body, headers=headers, ssl=context) as reply,
        ):
            payload = await reply.read()
            return web.Response(
                body=payload,
                status=reply.status,
                headers={"Content-Type": reply.headers.get("Content-Type", "application/json")},
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise APIError(503, f"cannot reach the leader at {address}: {exc}") from None
