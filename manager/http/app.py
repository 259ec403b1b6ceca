"""The manager's API as one aiohttp application."""

from __future__ import annotations

from aiohttp import web

from manager.http import (
    events,
    networks,
    nodes,
    secrets,
    services,
    swarm,
    system,
    tasks,
    volumes,
)
from manager.http.context import CONTEXT, APIContext
from manager.http.framework import docker_middleware


def make_app(ctx: APIContext) -> web.Application:
    app = web.Application(middlewares=[docker_middleware], client_max_size=8 * 1024 * 1024)
    app[CONTEXT] = ctx
    for module in (system, swarm, nodes, services, tasks, networks, secrets, volumes, events):
        module.register(app.router)
    return app
