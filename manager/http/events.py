"""/events: the cluster's changes as Docker events, streamed one JSON per line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from manager.http.context import context
from manager.http.framework import add_route, bad_request, parse_filters
from manager.http.lookup import name_of
from manager.store.state import Change
from manager.store.store import WatchTooOld

EVENT_FILTERS = {
    "type",
    "event",
    "service",
    "node",
    "network",
    "secret",
    "config",
    "scope",
    "label",
}
EVENT_TABLES = {"service", "node", "network", "secret", "config"}


def _seconds(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise bad_request(f"invalid {name} value {text!r}") from None


def to_event(change: Change) -> dict[str, Any]:
    obj = change.object or {}
    action = {"create": "create", "update": "update", "delete": "remove"}[change.op]
    stamp = str(obj.get("UpdatedAt") or "")
    try:
        when = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        when = time.time()
    return {
        "Type": change.table,
        "Action": action,
        "Actor": {"ID": change.id, "Attributes": {"name": name_of(change.table, obj)}},
        "scope": "swarm",
        "time": int(when),
        "timeNano": int(when * 1e9),
    }


def wanted(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    if "type" in filters and event["Type"] not in filters["type"]:
        return False
    if "event" in filters and event["Action"] not in filters["event"]:
        return False
    kind = event["Type"]
    if kind in filters:
        names = {event["Actor"]["ID"], event["Actor"]["Attributes"]["name"]}
        if not names & set(filters[kind]):
            return False
    return not ("scope" in filters and "swarm" not in filters["scope"])


async def events(request: web.Request) -> web.StreamResponse:
    ctx = context(request)
    filters = parse_filters(request, EVENT_FILTERS)
    since = _seconds(request.query.get("since"), "since")
    until = _seconds(request.query.get("until"), "until")
    start_index = ctx.store.state.changelog_start if since is not None else ctx.store.index
    try:
        changes = ctx.store.watch(start_index, frozenset(EVENT_TABLES))
    except WatchTooOld:
        changes = ctx.store.watch(ctx.store.index, frozenset(EVENT_TABLES))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        while True:
            timeout = None if until is None else max(0.0, until - time.time())
            try:
                async with asyncio.timeout(timeout):  # not wait_for: see manager/leader.py
                    change = await anext(changes)
            except TimeoutError:
                break
            event = to_event(change)
            if since is not None and event["time"] < since:
                continue
            if until is not None and event["time"] > until:
                break
            if wanted(event, filters):
                await response.write(json.dumps(event).encode() + b"\n")
    finally:
        with contextlib.suppress(Exception):
            await changes.aclose()
    return response


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/events", events)
