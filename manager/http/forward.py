"""Requests only the leader can carry out (Raft membership changes) are
passed on to it when they arrive at a follower."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from manager.http.framework import APIError

LeaderAPI = Callable[[], str | None]
LEADER_API: web.AppKey[LeaderAPI] = web.AppKey("leader_api")


async def forward_to_leader(request: web.Request) -> web.Response:
    find = request.app.get(LEADER_API)
    address = find() if find is not None else None
    if address is None:
        raise APIError(503, "the cluster has no leader: a majority of managers is not reachable")
    body = await request.read()
    url = f"http://{address}{request.rel_url}"
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                request.method, url, data=body, headers={"Content-Type": "application/json"}
            ) as reply,
        ):
            payload = await reply.read()
            return web.Response(
                body=payload,
                status=reply.status,
                headers={"Content-Type": reply.headers.get("Content-Type", "application/json")},
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise APIError(503, f"cannot reach the leader at {address}: {exc}") from None
