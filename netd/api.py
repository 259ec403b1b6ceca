"""netd's API for the agent on the same host (unix socket):

- POST /attach {"TaskID", "Attachments": [{"NetworkID", "Address", "MAC"}]}
  -> {"Netns": path, "ResolvConf": path}: the container's network namespace,
  attached to its overlays and to the gateway bridge, and its resolv.conf;
- POST /detach {"TaskID"} -> {"Detached": bool}.

Errors are {"message": ...} with 400 for a request that cannot be met."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from api.serving import metrics_handler

if TYPE_CHECKING:
    from netd.daemon import Netd

NETD: web.AppKey[Any] = web.AppKey("netd")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("TaskID"), str):
        raise web.HTTPBadRequest(
            text=json.dumps({"message": "a JSON object with TaskID is needed"}),
            content_type="application/json",
        )
    return body


async def attach(request: web.Request) -> web.Response:
    from netd.daemon import AttachError

    netd: Netd = request.app[NETD]
    body = await _body(request)
    wanted = body.get("Attachments") or []
    if not isinstance(wanted, list) or not all(
        isinstance(w, dict) and {"NetworkID", "Address", "MAC"} <= set(w) for w in wanted
    ):
        return _error(400, "Attachments: a list of {NetworkID, Address, MAC}")
    try:
        attachment = await netd.attach(body["TaskID"], wanted)
    except AttachError as exc:
        return _error(400, str(exc))
    resolv = netd.write_resolv_conf(attachment.task_id)
    return web.json_response({"Netns": f"/run/netns/{attachment.netns}", "ResolvConf": str(resolv)})


async def detach(request: web.Request) -> web.Response:
    netd: Netd = request.app[NETD]
    body = await _body(request)
    return web.json_response({"Detached": await netd.detach(body["TaskID"])})


def make_api(netd: Netd) -> web.Application:
    app = web.Application()
    app[NETD] = netd
    app.router.add_post("/attach", attach)
    app.router.add_post("/detach", detach)
    app.router.add_get("/metrics", metrics_handler(netd.metrics.registry))
    return app
