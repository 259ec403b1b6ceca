"""Rolling updates and rollbacks, as a pure planner (swarmkit's updater, made
restartable). Every fact it needs lives in the store, so a new leader carries
an update on from where the old one left it:

- the service's `UpdateStatus` (State, and StartedAt, which tags the tasks
  this update created: `UpdateStartedAt` on the task);
- each task's content (a task is dirty when its Spec differs from the
  service's TaskTemplate, as swarmkit's IsTaskDirty), its observed state, and
  `RunningAt` (epoch seconds, set by the dispatcher when it first ran).

A dirty slot is replaced as a worker of the update becomes free:
`Parallelism` workers (0: every slot at once); a worker is busy from creating
a task until that task ran (or ended) plus `Delay`. stop-first shuts the old
task down and creates the new one held at desired state `ready` (prepared:
image pulled, container created), started once the old one has stopped;
start-first creates the new one running, and the slot planner stops the old
one once the new one runs. A task of this update that ends within `Monitor`
of running counts as a failure; more than `MaxFailureRatio` of the slots
failing triggers `FailureAction`. The update completes `Monitor` after the
last new task ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.base import format_time, parse_time
from api.task import TaskState

Obj = dict[str, Any]

ACTIVE_STATES = ("updating", "rollback_started")
PAUSED_STATES = ("paused", "rollback_paused")
# Observed states in which a task will never run again (as plan.ENDED).
ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned"}
# An updated task that ends like this soon after it ran failed the update.
EARLY_END = {"failed", "rejected", "complete"}
DEFAULT_MONITOR = 5.0  # seconds, swarmkit's default (and the docker CLI's verify wait)


@dataclass(frozen=True)
class RolloutConfig:
    parallelism: int = 1
    delay: float = 0.0  # seconds
    failure_action: str = "pause"
    monitor: float = DEFAULT_MONITOR
    max_failure_ratio: float = 0.0
    order: str = "stop-first"


@dataclass(frozen=True)
class Slot:
    """One wanted slot (or a global service's node) the slot planner left
    alone this pass: `settled` is False when it is creating or stopping tasks
    in it (restart, drain), and the rollout leaves it for the next pass."""

    number: int
    node_id: str
    tasks: tuple[Obj, ...]
    settled: bool = True


@dataclass(frozen=True)
class Replace:
    """Put a task of the current spec in this slot (the update's step)."""

    service_id: str
    slot: int
    node_id: str
    rollout: str  # the update's StartedAt, tagged on the new task
    held: bool  # stop-first: created at desired state ready, started later
    stop: tuple[str, ...]  # the old tasks to shut down now (stop-first)


@dataclass(frozen=True)
class StartTask:
    """A held task's predecessor has stopped: raise its desired state to running."""

    task_id: str


@dataclass(frozen=True)
class SetUpdateStatus:
    service_id: str
    state: str
    message: str
    started_at: str = ""  # set only when the update starts
    completed_at: str = ""  # set only when it completes


@dataclass(frozen=True)
class RollBack:
    """FailureAction rollback: the service goes back to its PreviousSpec."""

    service_id: str
    message: str
    started_at: str


@dataclass(frozen=True)
class RolloutWait:
    """A worker frees up, or the monitor window ends, at this time."""

    service_id: str
    at: float


RolloutChange = Replace | StartTask | SetUpdateStatus | RollBack | RolloutWait


def _seconds(value: Any, default: float) -> float:
    return default if value is None else int(value) / 1e9


def rollout_config(service: Obj, rolling_back: bool) -> RolloutConfig:
    """UpdateConfig, or RollbackConfig during a rollback; unset fields take
    swarmkit's defaults (Parallelism 1, pause, Monitor 5 s, stop-first)."""
    spec = service.get("Spec") or {}
    raw = spec.get("RollbackConfig" if rolling_back else "UpdateConfig")
    if raw is None:
        return RolloutConfig()
    action = str(raw.get("FailureAction") or "pause")
    if rolling_back and action == "rollback":
        action = "pause"  # a rollback never rolls back
    return RolloutConfig(
        parallelism=int(raw.get("Parallelism") or 0),
        delay=_seconds(raw.get("Delay"), 0.0),
        failure_action=action,
        monitor=_seconds(raw.get("Monitor") or None, DEFAULT_MONITOR),
        max_failure_ratio=float(raw.get("MaxFailureRatio") or 0.0),
        order=str(raw.get("Order") or "stop-first"),
    )


def observed(task: Obj) -> str:
    return str((task.get("Status") or {}).get("State") or "new")


def is_clean(task: Obj, template: Obj) -> bool:
    return task.get("Spec") == template


def _live(task: Obj) -> bool:
    desired = str(task.get("DesiredState") or "running")
    return desired in ("running", "ready") and observed(task) not in ENDED


def occupies(task: Obj) -> bool:
    """The task reached a node and has not ended: its container may still run."""
    state = observed(task)
    if state in ENDED:
        return False
    try:
        return TaskState.from_json(state) >= TaskState.ASSIGNED
    except ValueError:
        return False


def is_dirty(slot: Slot, template: Obj) -> bool:
    live = [t for t in slot.tasks if _live(t)]
    return bool(live) and not any(is_clean(t, template) for t in live)


def _ended_at(task: Obj) -> float:
    try:
        return parse_time(str((task.get("Status") or {}).get("Timestamp") or "")) / 1e9
    except ValueError:
        return 0.0


def _running_at(task: Obj) -> float | None:
    value = task.get("RunningAt")
    return float(value) if value is not None else None


def _reached(task: Obj) -> float | None:
    """When the task ran, or ended without running; None while on its way."""
    ran = _running_at(task)
    if ran is not None:
        return ran
    return _ended_at(task) if observed(task) in ENDED else None


def _failed_early(task: Obj, monitor: float) -> bool:
    if observed(task) not in EARLY_END:
        return False
    ran = _running_at(task)
    return ran is None or _ended_at(task) - ran <= monitor


def _stamp(now: float) -> str:
    return format_time(int(now * 1_000_000_000))


def _promotions(slots: list[Slot]) -> list[RolloutChange]:
    changes: list[RolloutChange] = []
    for slot in slots:
        for task in slot.tasks:
            if task.get("DesiredState") != "ready" or observed(task) in ENDED:
                continue
            if not any(occupies(other) for other in slot.tasks if other is not task):
                changes.append(StartTask(task["ID"]))
    return changes


def _failure_action(
    service: Obj, config: RolloutConfig, failed: list[Obj], slots: int, now: float
) -> RolloutChange | None:
    if not failed or config.failure_action == "continue":
        return None
    if len(failed) / max(slots, 1) <= config.max_failure_ratio:
        return None
    culprit = max(failed, key=_ended_at)["ID"]
    status = service.get("UpdateStatus") or {}
    rolling_back = str(status.get("State", "")).startswith("rollback")
    what = "rollback" if rolling_back else "update"
    reason = f"due to failure or early termination of task {culprit}"
    if config.failure_action == "rollback" and service.get("PreviousSpec"):
        return RollBack(service["ID"], f"update rolled back {reason}", _stamp(now))
    paused = "rollback_paused" if rolling_back else "paused"
    return SetUpdateStatus(service["ID"], paused, f"{what} paused {reason}")


def plan_rollout(service: Obj, slots: list[Slot], now: float) -> list[RolloutChange]:
    """The update's next steps for a replicated or global service."""
    service_id = service["ID"]
    template = (service.get("Spec") or {}).get("TaskTemplate") or {}
    status = service.get("UpdateStatus") or {}
    state = str(status.get("State") or "")
    changes = _promotions(slots)
    if state in PAUSED_STATES:
        return changes
    dirty = [s for s in slots if s.settled and is_dirty(s, template)]
    tag = str(status.get("StartedAt") or "")
    if state not in ACTIVE_STATES:
        if not dirty:
            return changes
        tag = _stamp(now)
        changes.append(SetUpdateStatus(service_id, "updating", "update in progress", tag))
        state = "updating"
    config = rollout_config(service, state == "rollback_started")
    updated = [t for s in slots for t in s.tasks if t.get("UpdateStartedAt") == tag]
    failed = [t for t in updated if _failed_early(t, config.monitor)]
    action = _failure_action(service, config, failed, len(slots), now)
    if action is not None:
        return [*changes, action]

    wakes: list[float] = []
    busy = 0
    for task in updated:
        reached = _reached(task)
        if reached is None:
            busy += _live(task)  # a stopped task that never ran holds no worker
        elif now < reached + config.delay:
            busy += 1
            wakes.append(reached + config.delay)
    free = len(dirty) if config.parallelism == 0 else max(config.parallelism - busy, 0)
    held = config.order != "start-first"
    for slot in dirty[:free]:
        stop = tuple(t["ID"] for t in slot.tasks if _live(t)) if held else ()
        changes.append(Replace(service_id, slot.number, slot.node_id, tag, held, stop))

    on_the_way = any(_reached(t) is None and _live(t) for t in updated)
    if not dirty and not on_the_way and all(s.settled for s in slots):
        ran = [r for r in (_running_at(t) for t in updated) if r is not None]
        done_at = max(ran, default=now - config.monitor) + config.monitor
        if now >= done_at:
            rolled_back = state == "rollback_started"
            changes.append(
                SetUpdateStatus(
                    service_id,
                    "rollback_completed" if rolled_back else "completed",
                    "rollback completed" if rolled_back else "update completed",
                    completed_at=_stamp(now),
                )
            )
        else:
            wakes.append(done_at)
    if wakes:
        changes.append(RolloutWait(service_id, min(wakes)))
    return changes
