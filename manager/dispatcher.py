"""The dispatcher: agents' sessions with the managers (DESIGN.md §1 step 5).

Agents register with a join token, send heartbeats at the cluster's period,
long-poll their assignments and report task status. Heartbeats live in the
leader's memory, never in the store; a node silent for three periods becomes
`down`, and its tasks `orphaned`, so the orchestrator replaces them. Status
updates from many agents are batched into few store writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from api.base import now_time as now
from api.task import TaskState
from manager.orchestrator.plan import state_rank
from manager.store.proposer import NoLeader
from manager.store.state import StoreError
from manager.store.store import Store, WriteTx

Obj = dict[str, Any]
DEFAULT_HEARTBEAT_SECONDS = 5.0
MISSED_HEARTBEATS = 3
FLUSH_SECONDS = 0.05


def heartbeat_period(store: Store) -> float:
    clusters = store.view(lambda tx: tx.all("cluster"))
    if not clusters:
        return DEFAULT_HEARTBEAT_SECONDS
    period = ((clusters[0].get("Spec") or {}).get("Dispatcher") or {}).get("HeartbeatPeriod")
    return float(period) / 1e9 if period else DEFAULT_HEARTBEAT_SECONDS


@dataclass
class Dispatcher:
    store: Store
    clock: Callable[[], float] = time.monotonic
    last_seen: dict[str, float] = field(default_factory=dict)
    _updates: dict[str, tuple[str, Obj]] = field(default_factory=dict)  # task -> (node, status)
    _flushed: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # ---- heartbeats and node state ----------------------------------------------

    async def heartbeat(self, node_id: str) -> float:
        """Record a heartbeat; a node that was down is ready again. The period."""
        self.last_seen[node_id] = self.clock()
        node = self.store.view(lambda tx: tx.get("node", node_id))
        if node is not None and (node.get("Status") or {}).get("State") != "ready":
            await self._set_node_state(node_id, "ready", "")
        return heartbeat_period(self.store)

    async def _set_node_state(self, node_id: str, state: str, message: str) -> None:
        def change(tx: WriteTx) -> None:
            node = tx.get("node", node_id)
            if node is None:
                return
            node["Status"] = {**(node.get("Status") or {}), "State": state, "Message": message}
            tx.update("node", node, check_version=False)
            if state != "down":
                return
            for task in tx.find("task", "node", node_id):
                status = task.get("Status") or {}
                if state_rank(str(status.get("State"))) < int(TaskState.COMPLETE):
                    # Stamped now: the scheduler's volume fence counts from it.
                    orphaned = {"State": "orphaned", "Message": "node is down", "Timestamp": now()}
                    task["Status"] = {**status, **orphaned}
                    tx.update("task", task, check_version=False)

        await self.store.update(change)

    async def watch_nodes(self) -> None:
        """Mark agents' nodes down after three silent periods (leader only).
        A new leader gives every agent a fresh grace period first."""
        now = self.clock()
        agents = self.store.view(lambda tx: [n["ID"] for n in tx.all("node") if n.get("Agent")])
        for node_id in agents:
            self.last_seen.setdefault(node_id, now)
        while True:
            period = heartbeat_period(self.store)
            await asyncio.sleep(period / 2)
            deadline = self.clock() - MISSED_HEARTBEATS * period
            nodes = self.store.view(lambda tx: [n for n in tx.all("node") if n.get("Agent")])
            for node in nodes:
                seen = self.last_seen.setdefault(node["ID"], self.clock())
                if seen < deadline and (node.get("Status") or {}).get("State") != "down":
                    with contextlib.suppress(StoreError, NoLeader):
                        await self._set_node_state(node["ID"], "down", "heartbeat failure")

    # ---- task status ------------------------------------------------------------

    async def report(self, node_id: str, updates: list[tuple[str, Obj]]) -> None:
        """Queue status updates; return once they are in the store."""
        for task_id, status in updates:
            self._updates[task_id] = (node_id, status)
        self._wake.set()
        flushed = self._flushed
        await flushed.wait()

    async def flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(FLUSH_SECONDS)  # let more agents' updates join this write
            updates, self._updates = self._updates, {}
            flushed, self._flushed = self._flushed, asyncio.Event()
            with contextlib.suppress(StoreError, NoLeader):
                await self.store.update(partial(self._apply, updates=updates))
            flushed.set()

    @staticmethod
    def _apply(tx: WriteTx, *, updates: dict[str, tuple[str, Obj]]) -> None:
        for task_id, (node_id, status) in updates.items():
            task = tx.get("task", task_id)
            if task is None or task.get("NodeID") != node_id:
                continue  # not this node's task (any more): ignore its word
            current = str((task.get("Status") or {}).get("State") or "new")
            if state_rank(str(status.get("State"))) < state_rank(current):
                continue  # observed states only move forward
            task["Status"] = status
            if status.get("State") == "running" and "RunningAt" not in task:
                # When it first ran: a rolling update paces and monitors by it.
                task["RunningAt"] = time.time()
            tx.update("task", task, check_version=False)


class DispatcherLoops:
    """The dispatcher's leader-only work, as one component."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.dispatcher.flush_forever())
            group.create_task(self.dispatcher.watch_nodes())
