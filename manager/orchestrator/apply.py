"""The orchestrator's thin applier: one service's plan, written in the
reconciler's transaction. Returns when the service wants planning again."""

from __future__ import annotations

import logging
from typing import Any

from api.base import new_id
from api.base import now_time as now
from manager.allocator.endpoint import EndpointError, allocate_endpoint
from manager.allocator.ipam import IPAMError
from manager.orchestrator.plan import Change, CreateTask, DeleteTask, StopTask, WaitUntil
from manager.orchestrator.rollout import (
    Replace,
    RollBack,
    RolloutWait,
    SetUpdateStatus,
    StartTask,
)
from manager.store.store import WriteTx

Obj = dict[str, Any]
log = logging.getLogger("shoal.manager.orchestrator")


def new_task(service: Obj, change: CreateTask) -> Obj:
    spec = service["Spec"]
    return {
        "ID": new_id(),
        "ServiceID": service["ID"],
        "Slot": change.slot,
        "NodeID": change.node_id,
        "Labels": {},
        "Spec": spec.get("TaskTemplate") or {},
        "SpecVersion": service.get("SpecVersion", 1),
        "ServiceAnnotations": {"Name": spec.get("Name", ""), "Labels": spec.get("Labels") or {}},
        "DesiredState": "running",
        "Status": {"Timestamp": now(), "State": "new", "Message": "created"},
        # The slot's restarts so far (epoch seconds), for MaxAttempts and Window.
        **({"Restarts": list(change.restarts)} if change.restarts else {}),
        **({"JobIteration": {"Index": change.job_iteration}} if change.job_iteration else {}),
    }


def _replace(tx: WriteTx, service: Obj, change: Replace) -> None:
    for task_id in change.stop:
        old = tx.get("task", task_id)
        if old is not None:
            tx.update("task", dict(old, DesiredState="shutdown"))
    task = new_task(service, CreateTask(service["ID"], change.slot, change.node_id))
    task["UpdateStartedAt"] = change.rollout  # counts for this update's failures and pace
    if change.held:
        task["DesiredState"] = "ready"  # prepared now, started once the old task stopped
    tx.create("task", task)


def _set_update_status(tx: WriteTx, service: Obj, change: SetUpdateStatus) -> Obj:
    status = dict(service.get("UpdateStatus") or {}, State=change.state, Message=change.message)
    if change.started_at:
        status["StartedAt"] = change.started_at
        status.pop("CompletedAt", None)
    if change.completed_at:
        status["CompletedAt"] = change.completed_at
    service = dict(service, UpdateStatus=status)
    tx.update("service", service, check_version=False)
    return service


def _roll_back(tx: WriteTx, service: Obj, change: RollBack) -> Obj:
    """Swarmkit's automatic rollback: the previous spec and spec version
    return, and there is no previous spec any more."""
    previous = service.get("PreviousSpec")
    if not previous:
        return service
    rolled = dict(service, Spec=previous)
    rolled.pop("PreviousSpec", None)
    if "PreviousSpecVersion" in service:
        rolled["SpecVersion"] = rolled.pop("PreviousSpecVersion")
    try:
        rolled["Endpoint"] = allocate_endpoint(tx, service["ID"], previous, service.get("Endpoint"))
    except (EndpointError, IPAMError) as exc:  # e.g. its old port was taken meanwhile
        log.warning("service %s: keeps its endpoint on rollback: %s", service["ID"], exc)
    rolled["UpdateStatus"] = {
        "State": "rollback_started",
        "StartedAt": change.started_at,
        "Message": change.message,
    }
    tx.update("service", rolled, check_version=False)
    return rolled


def apply_plan(tx: WriteTx, service: Obj, tasks: list[Obj], plan: list[Change]) -> float | None:
    """Carries out one service's plan; the earliest time it asked to be woken."""
    by_id = {t["ID"]: t for t in tasks}
    wake: float | None = None
    for change in plan:
        if isinstance(change, CreateTask):
            tx.create("task", new_task(service, change))
        elif isinstance(change, StopTask):
            tx.update("task", dict(by_id[change.task_id], DesiredState=change.desired))
        elif isinstance(change, DeleteTask):
            tx.delete("task", change.task_id)
        elif isinstance(change, WaitUntil | RolloutWait):
            wake = change.at if wake is None else min(wake, change.at)
        elif isinstance(change, Replace):
            _replace(tx, service, change)
        elif isinstance(change, StartTask):
            task = tx.get("task", change.task_id)
            if task is not None and task.get("DesiredState") == "ready":
                tx.update("task", dict(task, DesiredState="running"))
        elif isinstance(change, SetUpdateStatus):
            service = _set_update_status(tx, service, change)
        elif isinstance(change, RollBack):
            service = _roll_back(tx, service, change)
    return wake
