"""The manager's API as one aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from manager.http import (
    ca_api,
    dispatcher_api,
    events,
    join,
    logs,
    network_state,
    networks,
    nodes,
    secrets,
    services,
    swarm,
    system,
    tasks,
    volumes,
)
from manager.http.context import CONTEXT, APIContext, context
from manager.http.framework import Handler, docker_middleware
from manager.http.identity import authorize

READ_BARRIER_SECONDS = 1.0


@web.middleware
async def follower_reads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On a follower, a request first catches up with what the leader committed,
    so a client never reads older state than it just wrote elsewhere, and an
    update starts from current objects. Without a leader the replica answers
    reads from what it has (and writes fail fast in the store)."""
    leadership = context(request).manager.leadership
    if request.path != "/_ping" and not leadership.is_leader():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(leadership.read_barrier(), READ_BARRIER_SECONDS)
    return await handler(request)


def make_app(ctx: APIContext) -> web.Application:
    app = web.Application(
        middlewares=[docker_middleware, authorize, follower_reads], client_max_size=8 * 1024 * 1024
    )
    app[CONTEXT] = ctx
    modules = (
        system,
        swarm,
        nodes,
        services,
        tasks,
        networks,
        secrets,
        volumes,
        events,
        logs,
        join,
        dispatcher_api,
        network_state,
        ca_api,
    )
    for module in modules:
        module.register(app.router)
    return app
