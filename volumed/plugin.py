"""Docker's volume plugin protocol on a unix socket.

Every call is a POST with a JSON body (often empty for Activate, List and
Capabilities). A refused call answers `{"Err": "..."}` with status 500, as the
plugin helpers Docker publishes do (go-plugins-helpers' sdk); Docker reads
the Err of any status. Answers carry the plugin content type.

The driver of a new volume comes in Create's Opts as `driver` (`shoal`, the
default, or `local`): one socket serves both.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from volumed.model import Volume, VolumeError
from volumed.volumes import Volumes

CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"
OPERATIONS = ("Create", "Remove", "Mount", "Unmount", "Path", "Get", "List", "Capabilities")

Observe = Callable[[str, bool], None]  # operation, succeeded
Handler = Callable[[Volumes, dict[str, Any]], Awaitable[dict[str, Any]]]


def _reply(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body), status=status, content_type=CONTENT_TYPE)


def _described(volumes: Volumes, volume: Volume) -> dict[str, Any]:
    described: dict[str, Any] = {"Name": volume.name, "CreatedAt": volume.created_at}
    path = volumes.path(volume.name)
    if path is not None:
        described["Mountpoint"] = str(path)
    described["Status"] = volume.status()
    return described


async def _create(volumes: Volumes, body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("Opts") or {}
    if not isinstance(options, dict):
        raise VolumeError("Opts: an object of strings")
    await volumes.create(body.get("Name"), options)
    return {"Err": ""}


async def _remove(volumes: Volumes, body: dict[str, Any]) -> dict[str, Any]:
    await volumes.remove(body.get("Name"))
    return {"Err": ""}


async def _mount(volumes: Volumes, body: dict[str, Any]) -> dict[str, Any]:
    path = await volumes.mount(body.get("Name"), body.get("ID"))
    return {"Mountpoint": str(path), "Err": ""}


async def _unmount(volumes: Volumes, body: dict[str, Any]) -> dict[str, Any]:
    await volumes.unmount(body.get("Name"), body.get("ID"))
    return {"Err": ""}


async def _path(volumes: Volumes, body: dict[str, Any]) -> dict[str, Any]:
    path = volumes.path(body.get("Name"))
    return {"Mountpoint": "" if path is None else str(path), "Err": ""}


async def _get(volumes: Volumes, body: dict[str, Any]) -> dict[str, Any]:
    return {"Volume": _described(volumes, volumes.get(body.get("Name"))), "Err": ""}


async def _list(volumes: Volumes, _: dict[str, Any]) -> dict[str, Any]:
    listed = []
    for volume in volumes.list():
        entry = {"Name": volume.name}
        path = volumes.path(volume.name)
        if path is not None:
            entry["Mountpoint"] = str(path)
        listed.append(entry)
    return {"Volumes": listed, "Err": ""}


async def _capabilities(_: Volumes, __: dict[str, Any]) -> dict[str, Any]:
    # global: a volume's name means the same volume on every node.
    return {"Capabilities": {"Scope": "global"}}


HANDLERS: dict[str, Handler] = {
    "Create": _create,
    "Remove": _remove,
    "Mount": _mount,
    "Unmount": _unmount,
    "Path": _path,
    "Get": _get,
    "List": _list,
    "Capabilities": _capabilities,
}


def _endpoint(
    volumes: Volumes, operation: str, observe: Observe
) -> Callable[[web.Request], Awaitable[web.Response]]:
    handler = HANDLERS[operation]

    async def serve(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = "not JSON"
        if body is None:
            body = {}  # Docker sends `null` or nothing for calls without arguments
        if not isinstance(body, dict):
            observe(operation, False)
            return _reply({"Err": "the request body must be a JSON object"}, 500)
        try:
            answer = await handler(volumes, body)
        except VolumeError as exc:
            observe(operation, False)
            return _reply({"Err": str(exc)}, 500)
        observe(operation, True)
        return _reply(answer)

    return serve


async def _activate(_: web.Request) -> web.Response:
    return _reply({"Implements": ["VolumeDriver"]})


def make_plugin_app(volumes: Volumes, observe: Observe) -> web.Application:
    app = web.Application()
    app.router.add_post("/Plugin.Activate", _activate)
    for operation in OPERATIONS:
        app.router.add_post(f"/VolumeDriver.{operation}", _endpoint(volumes, operation, observe))
    return app
