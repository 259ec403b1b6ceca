"""/services/{id}/logs and /tasks/{id}/logs: the tasks' output, fetched from
the agents that ran them (their `/tasks/{id}/logs`, over mutual TLS with this
manager's certificate) and merged into one stream, framed as Docker's
multiplexed stream (8-byte header a line) unless the service has a TTY.

With `details`, each line starts with the swarm context the docker CLI needs
to name the task (`com.docker.swarm.node.id=…,service.id=…,task.id=… `);
with `timestamps`, the time comes first. `follow` keeps the stream open and
takes in the service's new tasks as they start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from api.base import parse_time
from api.log_stream import STREAM_NUMBERS, encode_details, encode_frame
from manager.http.context import context
from manager.http.forward import PEER_TLS
from manager.http.framework import APIError, add_route, bad_request, query_bool
from manager.http.lookup import resolve
from manager.http.swarm import require_cluster
from manager.store.store import ReadTx
from manager.store.tables import Obj

log = logging.getLogger("shoal.manager.logs")
NEW_TASKS_POLL = 1.0  # seconds between looks for a followed service's new tasks
STARTED = {"starting", "running", "complete", "failed", "shutdown"}


@dataclass(frozen=True)
class LogOptions:
    follow: bool
    details: bool
    timestamps: bool
    streams: frozenset[str]
    since: float | None  # unix seconds
    tail: int | None  # None: all


def parse_since(text: str) -> float:
    """Docker's `since`: unix seconds ("1700000000.5", as the CLI sends) or RFC3339."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_time(text) / 1e9
    except ValueError:
        raise bad_request(f"invalid value for since: {text!r}") from None


def log_options(request: web.Request) -> LogOptions:
    streams = frozenset(s for s in STREAM_NUMBERS if query_bool(request, s))
    if not streams:
        raise bad_request("Bad parameters: you must choose at least one stream")
    tail_text = request.query.get("tail", "all").strip()
    tail: int | None = None
    if tail_text not in ("", "all"):
        try:
            tail = max(int(tail_text), 0)
        except ValueError:
            raise bad_request(f"invalid value for tail: {tail_text!r}") from None
    since_text = request.query.get("since", "").strip()
    return LogOptions(
        follow=query_bool(request, "follow"),
        details=query_bool(request, "details"),
        timestamps=query_bool(request, "timestamps"),
        streams=streams,
        since=parse_since(since_text) if since_text and since_text != "0" else None,
        tail=tail,
    )


def frame(stream: str, payload: bytes, tty: bool) -> bytes:
    return payload if tty else encode_frame(stream, payload)


def format_line(task: Obj, entry: dict[str, Any], options: LogOptions) -> bytes:
    text = str(entry.get("line", ""))
    if options.details:
        context_attrs = {
            "com.docker.swarm.node.id": str(task.get("NodeID", "")),
            "com.docker.swarm.service.id": str(task.get("ServiceID", "")),
            "com.docker.swarm.task.id": str(task["ID"]),
        }
        text = f"{encode_details(context_attrs)} {text}"
    if options.timestamps:
        when = datetime.fromisoformat(str(entry["time"])).astimezone(UTC)
        # Go's RFC3339NanoFixed: always nine digits of fraction.
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond * 1000:09d}Z"
        text = f"{stamp} {text}"
    return text.encode()


def _node_api(tx: ReadTx, task: Obj) -> str | None:
    node = tx.get("node", str(task.get("NodeID") or ""))
    return str(node["AgentAPI"]) if node and node.get("AgentAPI") else None


def _tasks_with_output(tx: ReadTx, tasks: list[Obj]) -> list[tuple[Obj, str]]:
    found = []
    for task in tasks:
        state = str((task.get("Status") or {}).get("State") or "")
        address = _node_api(tx, task)
        if state in STARTED and address is not None:
            found.append((task, address))
    return found


class LogMerger:
    """One reader per task, all writing framed lines into one response."""

    def __init__(
        self, response: web.StreamResponse, options: LogOptions, tls: ssl.SSLContext, tty: bool
    ) -> None:
        self.response = response
        self.options = options
        self.tls = tls
        self.tty = tty
        self.write_lock = asyncio.Lock()
        self.started: set[str] = set()

    async def read_task(self, session: aiohttp.ClientSession, task: Obj, address: str) -> None:
        params = {"follow": "1" if self.options.follow else "0"}
        if self.options.tail is not None:
            params["tail"] = str(self.options.tail)
        if self.options.since is not None:
            params["since"] = repr(self.options.since)
        url = f"https://{address}/tasks/{task['ID']}/logs"
        try:
            # The agent's certificate names its node, not its address.
            node = str(task.get("NodeID", ""))
            async with session.get(url, params=params, ssl=self.tls, server_hostname=node) as reply:
                if reply.status != 200:
                    log.warning("logs of task %s: agent answered %s", task["ID"], reply.status)
                    return
                async for raw in reply.content:
                    entry = json.loads(raw)
                    stream = str(entry.get("stream", "stdout"))
                    if stream not in self.options.streams:
                        continue
                    payload = format_line(task, entry, self.options)
                    async with self.write_lock:
                        await self.response.write(frame(stream, payload, self.tty))
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            log.warning("logs of task %s from %s: %s", task["ID"], address, exc)

    async def run(self, current: Callable[[], list[tuple[Obj, str]]]) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as group:
            while True:
                for task, address in current():
                    if task["ID"] not in self.started:
                        self.started.add(task["ID"])
                        group.create_task(self.read_task(session, task, address))
                if not self.options.follow:
                    return  # the group waits for every reader to finish
                await asyncio.sleep(NEW_TASKS_POLL)


async def _stream_logs(
    request: web.Request, pick: Callable[[ReadTx], tuple[list[Obj], bool]]
) -> web.StreamResponse:
    ctx = context(request)
    options = log_options(request)
    _, tty = ctx.store.view(pick)  # 404 before any byte is sent
    tls_of = request.app.get(PEER_TLS)
    tls = tls_of() if tls_of is not None else None
    if tls is None:
        raise APIError(503, "this manager has no certificate yet to reach the nodes with")
    kind = "raw-stream" if tty else "multiplexed-stream"
    response = web.StreamResponse(headers={"Content-Type": f"application/vnd.docker.{kind}"})
    await response.prepare(request)

    # Listed again each round, so that a followed service's new tasks join.
    def current() -> list[tuple[Obj, str]]:
        return ctx.store.view(lambda tx: _tasks_with_output(tx, pick(tx)[0]))

    with contextlib.suppress(ConnectionResetError):
        await LogMerger(response, options, tls, tty).run(current)
        await response.write_eof()
    return response


def _tty(spec: Obj) -> bool:
    return bool(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("TTY"))


async def service_logs(request: web.Request) -> web.StreamResponse:
    def pick(tx: ReadTx) -> tuple[list[Obj], bool]:
        require_cluster(tx)
        service = resolve(tx, "service", request.match_info["id"])
        return tx.find("task", "service", service["ID"]), _tty(service["Spec"])

    return await _stream_logs(request, pick)


async def task_logs(request: web.Request) -> web.StreamResponse:
    def pick(tx: ReadTx) -> tuple[list[Obj], bool]:
        require_cluster(tx)
        task = resolve(tx, "task", request.match_info["id"])
        return [task], _tty({"TaskTemplate": task.get("Spec") or {}})

    return await _stream_logs(request, pick)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/services/{id}/logs", service_logs)
    add_route(router, "GET", "/tasks/{id}/logs", task_logs)
