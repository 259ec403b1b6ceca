"""The orchestrator's planner: from a service and its tasks (and, for global
services, the nodes) to the task changes that make the service whole.
Pure: frozen, comparable values out; `manager.orchestrator.apply` writes them.

Replicated services own slots 1..Replicas; each slot wants one task whose
desired state is running. A task that ended (failed, rejected, complete or
shut down by the node) is replaced by a new task in the same slot under the
service's restart policy, as swarm does: Condition (default any), Delay after
the task ended (default 5 s; a planner result `WaitUntil` asks to be run
again then), MaxAttempts restarts within Window (0: no limit). The slot's
restart times travel on its tasks (`Restarts`), so a new leader counts on.
Tasks orphaned by a node that went down are replaced without the delay: the
node failed, not the task. Slots above Replicas are removed. Global services
want one task per eligible node (slot 0). Slots this planner leaves alone go
to the rolling-update planner (`rollout`), which replaces tasks of an older
spec. `now` is an argument: pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.base import parse_time
from api.task import TaskState
from manager.orchestrator.rollout import RolloutChange, Slot, plan_rollout

Obj = dict[str, Any]

# Observed states after which a task will never run again.
ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned"}
# Restart condition -> the ended states that still get a replacement.
RESTART_ON = {
    "any": {"complete", "shutdown", "failed", "rejected", "orphaned"},
    "on-failure": {"failed", "rejected", "orphaned"},
    "none": set[str](),
}
HISTORY_PER_SLOT = 5
DEFAULT_RESTART_DELAY = 5.0


@dataclass(frozen=True)
class CreateTask:
    service_id: str
    slot: int  # 0 for global services
    node_id: str  # set for global services, "" otherwise
    restarts: tuple[float, ...] = ()  # this slot's restart times (epoch s) within the window
    job_iteration: int = 0  # jobs: the run this task belongs to


@dataclass(frozen=True)
class WaitUntil:
    """A slot restarts later (the policy's Delay): plan the service again then."""

    service_id: str
    at: float  # epoch seconds


@dataclass(frozen=True)
class RestartPolicy:
    condition: str = "any"
    delay: float = DEFAULT_RESTART_DELAY  # seconds
    max_attempts: int = 0  # 0: no limit
    window: float = 0.0  # seconds; 0: every restart counts


@dataclass(frozen=True)
class StopTask:
    """Raise the desired state: shutdown (replaced) or remove (scaled away)."""

    task_id: str
    desired: str


@dataclass(frozen=True)
class DeleteTask:
    """History past the retention limit."""

    task_id: str


Change = CreateTask | StopTask | DeleteTask | WaitUntil | RolloutChange


def state_rank(state: str) -> int:
    try:
        return int(TaskState.from_json(state))
    except (KeyError, ValueError):
        return 0


def desired_running(task: Obj) -> bool:
    return state_rank(str(task.get("DesiredState") or "running")) <= int(TaskState.RUNNING)


def observed(task: Obj) -> str:
    return str((task.get("Status") or {}).get("State") or "new")


def restart_policy(service: Obj) -> RestartPolicy:
    template = (service.get("Spec") or {}).get("TaskTemplate") or {}
    policy = template.get("RestartPolicy") or {}
    delay = policy.get("Delay")
    return RestartPolicy(
        condition=str(policy.get("Condition") or "any"),
        delay=DEFAULT_RESTART_DELAY if delay is None else int(delay) / 1e9,
        max_attempts=int(policy.get("MaxAttempts") or 0),
        window=int(policy.get("Window") or 0) / 1e9,
    )


def _ended_at(task: Obj) -> float:
    try:
        return parse_time(str((task.get("Status") or {}).get("Timestamp") or "")) / 1e9
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class _Restart:
    now: bool = False
    restarts: tuple[float, ...] = ()
    later: float | None = None


def _restart(policy: RestartPolicy, ended: Obj, now: float) -> _Restart:
    """Whether the slot of this ended task restarts now, later, or never."""
    state = observed(ended)
    if state not in RESTART_ON.get(policy.condition, RESTART_ON["any"]):
        return _Restart()
    history = tuple(float(t) for t in ended.get("Restarts") or ())
    if policy.window:
        history = tuple(t for t in history if t > now - policy.window)
    if policy.max_attempts and len(history) >= policy.max_attempts:
        return _Restart()
    due = 0.0 if state == "orphaned" else _ended_at(ended) + policy.delay
    if now < due:
        return _Restart(later=due)
    return _Restart(now=True, restarts=(*history, now))


def _slot_plan(
    service: Obj,
    tasks: list[Obj],
    wanted: bool,
    now: float,
    drained: frozenset[str] = frozenset(),
) -> tuple[list[Change], _Restart]:
    """Changes for one slot (or one node of a global service), and whether a
    new task must be created in it (now, or later). Tasks on drained nodes are
    moved away."""
    live = [t for t in tasks if desired_running(t)]
    if not wanted:
        return [StopTask(t["ID"], "remove") for t in live], _Restart()
    on_drained = [t for t in live if t.get("NodeID") in drained]
    live = [t for t in live if t.get("NodeID") not in drained]
    active = [t for t in live if observed(t) not in ENDED]
    ended = [t for t in live if observed(t) in ENDED]
    changes: list[Change] = [StopTask(t["ID"], "shutdown") for t in on_drained + ended]
    if on_drained and not active:
        return changes, _Restart(now=True)
    template = (service.get("Spec") or {}).get("TaskTemplate") or {}
    changes += [StopTask(t["ID"], "shutdown") for t in _extra(active, template)]
    if active:
        return changes, _Restart()
    policy = restart_policy(service)
    if ended:
        return changes, _restart(policy, max(ended, key=_ended_at), now)
    if not tasks:
        return changes, _Restart(now=True)
    # Only history here: the slot was scaled away before (create again), or its
    # last task ended and was stopped in an earlier pass (restart per policy).
    last = max(tasks, key=lambda t: str(t.get("UpdatedAt") or ""))
    if last.get("DesiredState") == "remove":
        return changes, _Restart(now=True)
    return changes, _restart(policy, last, now)


def _created(task: Obj) -> str:
    return str(task.get("CreatedAt") or "")


def _extra(active: list[Obj], template: Obj) -> list[Obj]:
    """One task a slot, except during a start-first update: the old task
    stays until the newest task of the current spec runs."""
    if len(active) <= 1:
        return []
    clean = [t for t in active if t.get("Spec") == template]
    if not clean:
        return active[1:]
    newest = max(clean, key=_created)
    others = [t for t in active if t is not newest]
    if observed(newest) == "running":
        return others
    old = max(others, key=lambda t: (observed(t) == "running", _created(t)))
    return [t for t in others if t is not old]


def _settled(changes: list[Change]) -> bool:
    """The slot planner leaves the slot's tasks as they are this pass."""
    return all(isinstance(c, DeleteTask) for c in changes)


def _slot_changes(
    service_id: str, slot: int, node_id: str, restart: _Restart, iteration: int = 0
) -> list[Change]:
    if restart.now:
        return [CreateTask(service_id, slot, node_id, restart.restarts, iteration)]
    if restart.later is not None:
        return [WaitUntil(service_id, restart.later)]
    return []


def _history(tasks: list[Obj]) -> list[Change]:
    dead = [t for t in tasks if not desired_running(t) and observed(t) in ENDED]
    dead.sort(key=lambda t: str(t.get("UpdatedAt") or ""), reverse=True)
    return [DeleteTask(t["ID"]) for t in dead[HISTORY_PER_SLOT:]]


def plan_replicated(
    service: Obj, tasks: list[Obj], drained: frozenset[str] = frozenset(), now: float = 0.0
) -> list[Change]:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    replicas = int((mode.get("Replicated") or {}).get("Replicas") or 0)
    by_slot: dict[int, list[Obj]] = {}
    for task in tasks:
        by_slot.setdefault(int(task.get("Slot") or 0), []).append(task)
    changes: list[Change] = []
    slots: list[Slot] = []
    for slot in sorted(set(by_slot) | set(range(1, replicas + 1))):
        slot_tasks = by_slot.get(slot, [])
        wanted = 1 <= slot <= replicas
        slot_changes, restart = _slot_plan(service, slot_tasks, wanted, now, drained)
        slot_changes += _slot_changes(service["ID"], slot, "", restart)
        if wanted:
            slots.append(Slot(slot, "", tuple(slot_tasks), _settled(slot_changes)))
        changes += slot_changes + _history(slot_tasks)
    return changes + plan_rollout(service, slots, now)


def plan_global(
    service: Obj, tasks: list[Obj], eligible_nodes: list[str], now: float = 0.0
) -> list[Change]:
    by_node: dict[str, list[Obj]] = {}
    for task in tasks:
        by_node.setdefault(str(task.get("NodeID") or ""), []).append(task)
    changes: list[Change] = []
    slots: list[Slot] = []
    for node_id in sorted(set(by_node) | set(eligible_nodes)):
        node_tasks = by_node.get(node_id, [])
        wanted = node_id in eligible_nodes
        node_changes, restart = _slot_plan(service, node_tasks, wanted, now)
        node_changes += _slot_changes(service["ID"], 0, node_id, restart)
        if wanted:
            slots.append(Slot(0, node_id, tuple(node_tasks), _settled(node_changes)))
        changes += node_changes + _history(node_tasks)
    return changes + plan_rollout(service, slots, now)


def job_iteration(obj: Obj) -> int:
    """A job service's current run (JobStatus.JobIteration), or a task's."""
    status = obj.get("JobStatus") or {}
    iteration = (status.get("JobIteration") if status else obj.get("JobIteration")) or {}
    return int(iteration.get("Index") or 0)


def _job_slot(service: Obj, tasks: list[Obj], now: float) -> tuple[list[Change], _Restart, bool]:
    """One slot (or node) of a job: (changes, restart, done). A completed task
    is the slot's end: it is never restarted; failures restart per policy."""
    if any(observed(t) == "complete" for t in tasks):
        return [], _Restart(), True
    changes, restart = _slot_plan(service, tasks, True, now)
    return changes, restart, False


def plan_replicated_job(service: Obj, tasks: list[Obj], now: float = 0.0) -> list[Change]:
    """TotalCompletions tasks must complete, at most MaxConcurrent at a time;
    a new iteration (the spec changed) starts over and stops the old tasks."""
    job = ((service.get("Spec") or {}).get("Mode") or {}).get("ReplicatedJob") or {}
    concurrent = int(job.get("MaxConcurrent") or 1)
    total = int(job.get("TotalCompletions") or concurrent)
    iteration = job_iteration(service)
    changes: list[Change] = [
        StopTask(t["ID"], "remove")
        for t in tasks
        if job_iteration(t) != iteration and desired_running(t) and observed(t) not in ENDED
    ]
    by_slot: dict[int, list[Obj]] = {}
    for task in tasks:
        if job_iteration(task) == iteration:
            by_slot.setdefault(int(task.get("Slot") or 0), []).append(task)
    busy = 0
    for slot, slot_tasks in sorted(by_slot.items()):
        slot_changes, restart, done = _job_slot(service, slot_tasks, now)
        changes += slot_changes + _history(slot_tasks)
        if not done:
            busy += 1
            changes += _slot_changes(service["ID"], slot, "", restart, iteration)
    # Job slots count from 0, as swarmkit's (the docker CLI's progress relies on it).
    free = [s for s in range(total) if s not in by_slot][: max(concurrent - busy, 0)]
    changes += [CreateTask(service["ID"], s, "", (), iteration) for s in free]
    return changes


def plan_global_job(
    service: Obj, tasks: list[Obj], eligible_nodes: list[str], now: float = 0.0
) -> list[Change]:
    """One task per eligible node that runs to completion, once per iteration."""
    iteration = job_iteration(service)
    by_node: dict[str, list[Obj]] = {}
    for task in tasks:
        if job_iteration(task) == iteration:
            by_node.setdefault(str(task.get("NodeID") or ""), []).append(task)
    changes: list[Change] = []
    for node_id in sorted(set(by_node) | set(eligible_nodes)):
        node_tasks = by_node.get(node_id, [])
        if node_id not in eligible_nodes:
            continue
        node_changes, restart, done = _job_slot(service, node_tasks, now)
        changes += node_changes + _history(node_tasks)
        if not done:
            changes += _slot_changes(service["ID"], 0, node_id, restart, iteration)
    return changes
