"""The agent's own API: this node's images, as Docker's engine API shapes
them (docker-api.md): build, pull, push, list, remove. HTTPS with the node's
certificate; only admin and manager certificates may call it (a worker's
certificate names another node, and images are the operator's business).

- POST   /build?t=NAME&dockerfile=F&buildargs={...}  body: the context as a tar
         -> a stream of {"stream": line} / {"aux": {"ID": ...}} / {"error": ...}
- POST   /images/create?fromImage=NAME[&tag=T]   -> a stream of {"status": ...}
- POST   /images/{name}/push                     -> a stream of {"status": ...}
- GET    /images/json                            -> [{Id, RepoTags, Size, ...}]
- DELETE /images/{name}                          -> [{"Untagged": name}]
- GET    /tasks/{id}/logs?follow=1&tail=N&since=UNIX_SECONDS
         -> one {"time": RFC3339Nano, "stream": "stdout"|"stderr", "line": ...} a line
            (the managers merge these into `service logs`)
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import ssl
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from api.security import der_cert_info
from runtime.driver import ContainerdRuntime
from runtime.protocol import ContainerRuntimeError

log = logging.getLogger("shoal.agent.api")
RUNTIME: web.AppKey[ContainerdRuntime] = web.AppKey("runtime", ContainerdRuntime)
MAX_CONTEXT_BYTES = 512 * 1024 * 1024
TASK_ID = re.compile(r"[a-z0-9]{1,64}")  # names a log file: nothing else may pass
Emit = Callable[[dict[str, Any]], Awaitable[None]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


@web.middleware
async def admins_only(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The TLS handshake already wanted a certificate of the cluster's CA."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    role = der_cert_info(der).role if der else ""
    if role not in ("admin", "manager"):
        return _error(403, "the agent's API takes admin or manager certificates only")
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (ContainerRuntimeError, ValueError) as exc:
        return _error(400, str(exc))


async def _stream(
    request: web.Request, work: Callable[[Emit], Awaitable[None]]
) -> web.StreamResponse:
    """Docker's progress: one JSON object per line, an error as the last one."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)

    async def emit(message: dict[str, Any]) -> None:
        await response.write(json.dumps(message).encode() + b"\r\n")

    try:
        await work(emit)
    except (ContainerRuntimeError, ValueError, OSError) as exc:
        detail = {"message": str(exc)}
        output = getattr(exc, "output", None)
        if output:
            detail["output"] = str(output)
        await emit({"error": str(exc), "errorDetail": detail})
    await response.write_eof()
    return response


def _unpack_context(body: bytes, into: Path) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ValueError(f"the build context is not a readable tar: {exc}") from None


async def build(request: web.Request) -> web.StreamResponse:
    from runtime.builder import build as build_image  # the builder is a heavy import

    runtime = request.app[RUNTIME]
    tag = request.query.get("t", "")
    if not tag:
        return _error(400, "a build needs a name: t=NAME[:TAG]")
    dockerfile = request.query.get("dockerfile", "Dockerfile")
    try:
        args = json.loads(request.query.get("buildargs") or "{}")
    except ValueError:
        return _error(400, "buildargs must be a JSON object")
    body = await request.read()
    if len(body) > MAX_CONTEXT_BYTES:
        return _error(413, "the build context is larger than 512 MiB")

    async def work(emit: Emit) -> None:
        with tempfile.TemporaryDirectory(prefix="shoal-build-") as directory:
            context = Path(directory)
            await asyncio.to_thread(_unpack_context, body, context)
            lines: asyncio.Queue[str | None] = asyncio.Queue()

            async def forward() -> None:
                while (line := await lines.get()) is not None:
                    await emit({"stream": line + "\n"})

            forwarder = asyncio.create_task(forward())
            try:
                result = await build_image(
                    runtime,
                    context,
                    dockerfile=dockerfile,
                    tag=tag,
                    build_args={str(k): str(v) for k, v in args.items()},
                    progress=lines.put_nowait,
                )
            finally:
                lines.put_nowait(None)
                await forwarder
            await emit({"aux": {"ID": result.image_id}})

    return await _stream(request, work)


async def pull(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    image = request.query.get("fromImage", "")
    if not image:
        return _error(400, "fromImage is required")
    if request.query.get("tag"):
        image = f"{image}:{request.query['tag']}"

    async def work(emit: Emit) -> None:
        await emit({"status": f"Pulling {image}"})
        summary = await runtime.pull(image)
        await emit({"status": f"Digest: {summary.digest}"})
        await emit({"status": f"Status: Downloaded image for {summary.name}"})

    return await _stream(request, work)


async def push(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    name = request.match_info["name"]
    if request.query.get("tag"):
        name = f"{name}:{request.query['tag']}"

    async def work(emit: Emit) -> None:
        await emit({"status": f"Pushing {name}"})
        assert runtime.images is not None
        pushed = await runtime.images.push(name)
        summary = await runtime.inspect_image(name)
        await emit({"status": f"{pushed.name}: digest: {summary.digest} size: {summary.size}"})

    return await _stream(request, work)


async def list_images(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    images = await runtime.list_images()
    return web.json_response(
        [
            {
                "Id": str(i.config.get("_digest") or i.digest),
                "RepoTags": [i.name],
                "RepoDigests": [f"{i.name.rsplit(':', 1)[0]}@{i.digest}"],
                "Size": i.size,
                "Created": 0,
            }
            for i in sorted(images, key=lambda i: i.name)
        ]
    )


async def remove_image(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    name = request.match_info["name"]
    try:
        await runtime.remove_image(name)
    except ContainerRuntimeError as exc:
        status = 404 if "not found" in str(exc) else 409
        return _error(status, str(exc))
    return web.json_response([{"Untagged": name}])


def _log_options(request: web.Request) -> tuple[datetime | None, int | None, bool]:
    query = request.query
    since = datetime.fromtimestamp(float(query["since"]), UTC) if query.get("since") else None
    tail = int(query["tail"]) if query.get("tail") else None
    if tail is not None and tail < 0:
        raise ValueError("tail must not be negative")
    return since, tail, query.get("follow") in ("1", "true")


async def task_logs(request: web.Request) -> web.StreamResponse:
    """A task's output from its json log, which outlives the container until
    the task leaves the cluster."""
    task_id = request.match_info["id"]
    if not TASK_ID.fullmatch(task_id):
        return _error(400, f"invalid task ID {task_id!r}")
    try:
        since, tail, follow = _log_options(request)
    except ValueError as exc:
        return _error(400, f"invalid log options: {exc}")
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    runtime = request.app[RUNTIME]
    async for entry in runtime.logs(task_id, since=since, tail=tail, follow=follow):
        line = {"time": entry.time.isoformat(), "stream": entry.stream, "line": entry.line}
        await response.write(json.dumps(line).encode() + b"\n")
    await response.write_eof()
    return response


def make_api(runtime: ContainerdRuntime) -> web.Application:
    app = web.Application(middlewares=[admins_only], client_max_size=MAX_CONTEXT_BYTES)
    app[RUNTIME] = runtime
    app.router.add_post("/build", build)
    app.router.add_post("/images/create", pull)
    app.router.add_post("/images/{name:.+}/push", push)
    app.router.add_get("/images/json", list_images)
    app.router.add_delete("/images/{name:.+}", remove_image)
    app.router.add_get("/tasks/{id}/logs", task_logs)
    return app


def server_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Unlike a manager's port, every caller here must show a certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(cert), str(key))
    return context
