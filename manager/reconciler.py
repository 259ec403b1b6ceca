"""The leader's convergence loop: orchestrate, allocate, schedule.

It watches the store; each batch of changes (debounced) names the services to
look at again. For each of them the orchestrator's plan creates, stops and
forgets tasks; new tasks get their network addresses and become pending (and
nodes get their ingress address); pending tasks are placed by the scheduler.
Each phase is one store transaction; a conflict just means another pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

from api.base import now_time as now
from manager.allocator.apply import allocate_networks
from manager.orchestrator.apply import apply_plan
from manager.orchestrator.plan import (
    ENDED,
    desired_running,
    plan_global,
    plan_global_job,
    plan_replicated,
    plan_replicated_job,
)
from manager.scheduler.plan import Assign, NodeLoad, plan_schedule, reservations
from manager.scheduler.volumes import VolumeHolders
from manager.store.proposer import NoLeader
from manager.store.state import Change, StoreError
from manager.store.store import Store, WatchTooOld, WriteTx

Obj = dict[str, Any]
log = logging.getLogger("shoal.manager.reconciler")
DEBOUNCE_SECONDS = 0.01
FENCE_WAKE = "(volume fence)"  # a wake-up key that names no service


def eligible_for_global(node: Obj) -> bool:
    spec, status = node.get("Spec") or {}, node.get("Status") or {}
    return status.get("State") != "down" and spec.get("Availability", "active") != "drain"


class Reconciler:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Nodes changed since every node last had its ingress address checked.
        self._nodes_due = True
        # Restarts waiting for their delay: service ID -> when to plan it again.
        self._wake: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            try:
                await self._follow()
            except WatchTooOld:
                continue  # fell behind the change log: start over with a full pass

    async def _follow(self) -> None:
        services, changes = self.store.view_and_watch(
            lambda tx: {s["ID"] for s in tx.all("service")},
            frozenset({"service", "task", "node"}),
        )
        await self.reconcile(services, all_nodes=True)
        # A pump between the watch and the debounce: timing out a wait must
        # never cancel (and so end) the watch generator itself.
        queue: asyncio.Queue[Change] = asyncio.Queue()

        async def pump() -> None:
            async for change in changes:
                queue.put_nowait(change)

        async with asyncio.TaskGroup() as group:
            group.create_task(pump())
            while True:
                due = min(self._wake.values(), default=None)
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can
                    # swallow a cancellation that races a completed get().
                    async with asyncio.timeout(None if due is None else due - time.time()):
                        batch = [await queue.get()]
                except TimeoutError:  # a restart delay or an update's wait passed
                    ready = {s for s, at in self._wake.items() if at <= time.time()}
                    for service_id in ready:
                        self._wake.pop(service_id, None)
                    await self.reconcile(ready - {FENCE_WAKE}, all_nodes=False)
                    continue
                await asyncio.sleep(DEBOUNCE_SECONDS)  # let a burst of changes gather
                while not queue.empty():
                    batch.append(queue.get_nowait())
                touched = {c.id for c in batch if c.table == "service"}
                touched |= {
                    str((c.object or {}).get("ServiceID", "")) for c in batch if c.table == "task"
                } - {""}
                node_changed = any(c.table == "node" for c in batch)
                await self.reconcile(touched, all_nodes=node_changed)

    async def reconcile(self, service_ids: set[str], all_nodes: bool) -> None:
        """One pass; store refusals (conflicts, no quorum) wait for the next."""
        self._nodes_due = self._nodes_due or all_nodes
        phases = (
            partial(self._orchestrate, service_ids, all_nodes),
            self._reap,
            self._allocate,
            self._schedule,
        )
        for phase in phases:
            try:
                await phase()
            except (StoreError, NoLeader) as exc:
                log.info("reconcile pass deferred: %s", exc)

    async def _orchestrate(self, service_ids: set[str], all_nodes: bool) -> None:
        waits: dict[str, float] = {}

        def orchestrate(tx: WriteTx) -> None:
            waits.clear()  # a retried transaction plans afresh
            nodes = tx.all("node")
            eligible = [n["ID"] for n in nodes if eligible_for_global(n)]
            drained = frozenset(
                n["ID"] for n in nodes if (n.get("Spec") or {}).get("Availability") == "drain"
            )
            ids = {s["ID"] for s in tx.all("service")} if all_nodes else service_ids
            for service_id in ids:
                service = tx.get("service", service_id)
                if service is None:
                    for task in tx.find("task", "service", service_id):
                        if desired_running(task):
                            tx.update("task", dict(task, DesiredState="remove"))
                    continue
                tasks = tx.find("task", "service", service_id)
                mode = service["Spec"].get("Mode") or {}
                moment = time.time()
                if "Global" in mode:
                    plan = plan_global(service, tasks, eligible, now=moment)
                elif "Replicated" in mode:
                    plan = plan_replicated(service, tasks, drained, now=moment)
                elif "ReplicatedJob" in mode:
                    plan = plan_replicated_job(service, tasks, now=moment)
                elif "GlobalJob" in mode:
                    plan = plan_global_job(service, tasks, eligible, now=moment)
                else:
                    continue
                wake = apply_plan(tx, service, tasks, plan)
                if wake is not None:
                    waits[service_id] = min(wake, waits.get(service_id, wake))

        await self.store.update(orchestrate)
        self._wake.update(waits)

    async def _reap(self) -> None:
        """Tasks meant to go (scaled away, service removed) leave the store once
        they ended or never reached a node; their agents then delete the containers."""

        def reap(tx: WriteTx) -> None:
            for task in tx.find("task", "desired_state", "remove"):
                state = (task.get("Status") or {}).get("State")
                if state in ENDED or not task.get("NodeID"):
                    tx.delete("task", task["ID"])

        await self.store.update(reap)

    async def _allocate(self) -> None:
        """New tasks get their network addresses and become pending in one
        write; nodes get their ingress address when nodes changed."""
        check_nodes = self._nodes_due

        def allocate(tx: WriteTx) -> None:
            tasks = [t for t in tx.find("task", "state", "new") if desired_running(t)]
            allocation = allocate_networks(tx, tasks, check_nodes)
            for task in tasks:
                reason = allocation.refused.get(task["ID"])
                if reason is not None:  # it stays new until addresses free up
                    if (task.get("Status") or {}).get("Err") != reason:
                        tx.update("task", dict(task, Status=dict(task["Status"], Err=reason)))
                    continue
                status = {
                    "Timestamp": now(),
                    "State": "pending",
                    "Message": "pending task scheduling",
                }
                attachments = allocation.attachments.get(task["ID"])
                if attachments is not None:
                    task = dict(task, NetworksAttachments=attachments)
                tx.update("task", dict(task, Status=status))

        await self.store.update(allocate)
        if check_nodes:
            self._nodes_due = False

    async def _schedule(self) -> None:
        def schedule(tx: WriteTx) -> None:
            pending = [t for t in tx.find("task", "state", "pending") if desired_running(t)]
            if not pending:
                return
            nodes = tx.all("node")
            loads: dict[str, NodeLoad] = {}
            # Tasks still on their node hold their volumes, even those asked to stop.
            placed: list[Obj] = []
            for node in nodes:
                load = loads.setdefault(node["ID"], NodeLoad())
                for task in tx.find("task", "node", node["ID"]):
                    placed.append(task)
                    if (
                        desired_running(task)
                        and (task.get("Status") or {}).get("State") != "pending"
                    ):
                        load.add(str(task.get("ServiceID")), *reservations(task))
            records = {v["Name"]: v for v in tx.all("volume")}
            volumes = VolumeHolders(records, placed, time.time())
            if volumes.next_fence_end is not None:  # schedule again once the fence lapses
                self._wake[FENCE_WAKE] = volumes.next_fence_end
            by_id = {t["ID"]: t for t in pending}
            for decision in plan_schedule(pending, nodes, loads, volumes):
                task = by_id[decision.task_id]
                if isinstance(decision, Assign):
                    status = {
                        "Timestamp": now(),
                        "State": "assigned",
                        "Message": "scheduler assigned task to node",
                    }
                    tx.update("task", dict(task, NodeID=decision.node_id, Status=status))
                elif (task.get("Status") or {}).get("Err") != decision.reason:
                    status = dict(task.get("Status") or {}, Err=decision.reason)
                    tx.update("task", dict(task, Status=status))

        await self.store.update(schedule)
