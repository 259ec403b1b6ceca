"""Agents played by the test: tasks assigned to nodes move on as a node would
report them, through the dispatcher's write path (which also records when a
task first ran). An image named "bad" fails once it runs."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from api.base import now_time as now
from manager.dispatcher import Dispatcher
from manager.store.store import Store

Obj = dict[str, Any]
ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned"}


def next_state(task: Obj) -> str | None:
    """What a node would report next for this task."""
    state, desired = task["Status"]["State"], task["DesiredState"]
    if state in ENDED or not task.get("NodeID") or state in ("new", "pending"):
        return None
    if desired in ("shutdown", "remove"):
        return "shutdown"
    if state == "assigned":
        return "ready" if desired == "ready" else "running"
    if state == "ready" and desired == "running":
        return "running"
    image = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "")
    if state == "running" and image.split(":")[0] == "bad":
        return "failed"
    return None


async def simulated_agents(store: Store, interval: float = 0.05) -> None:
    while True:
        updates = {}
        for task in store.view(lambda tx: tx.all("task")):
            state = next_state(task)
            if state is not None:
                updates[task["ID"]] = (task["NodeID"], {"State": state, "Timestamp": now()})
        if updates:
            await store.update(partial(Dispatcher._apply, updates=updates))
        await asyncio.sleep(interval)


def node(node_id: str, hostname: str | None = None, role: str = "worker") -> Obj:
    """A ready node as the dispatcher would have registered it."""
    return {
        "ID": node_id,
        "Spec": {"Role": role, "Availability": "active", "Labels": {}},
        "Description": {
            "Hostname": hostname or node_id,
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": 4 * 10**9, "MemoryBytes": 8 << 30},
        },
        "Status": {"State": "ready", "Addr": "127.0.0.1"},
    }
