"""The orchestrator's planner: from a service and its tasks (and, for global
services, the nodes) to the task changes that make the service whole.
Pure: frozen, comparable values out; `manager.orchestrator.apply` writes them.

Replicated services own slots 1..Replicas; each slot wants one task whose
desired state is running. A task that ended (failed, rejected, complete or
shut down by the node) is replaced by a new task in the same slot, as swarm
does under the default restart policy (condition any). Slots above Replicas
are removed. Global services want one task per eligible node (slot 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.task import TaskState

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


@dataclass(frozen=True)
class CreateTask:
    service_id: str
    slot: int  # 0 for global services
    node_id: str  # set for global services, "" otherwise


@dataclass(frozen=True)
class StopTask:
    """Raise the desired state: shutdown (replaced) or remove (scaled away)."""

    task_id: str
    desired: str


@dataclass(frozen=True)
class DeleteTask:
    """History past the retention limit."""

    task_id: str


Change = CreateTask | StopTask | DeleteTask


def state_rank(state: str) -> int:
    try:
        return int(TaskState.from_json(state))
    except (KeyError, ValueError):
        return 0


def desired_running(task: Obj) -> bool:
    return state_rank(str(task.get("DesiredState") or "running")) <= int(TaskState.RUNNING)


def observed(task: Obj) -> str:
    return str((task.get("Status") or {}).get("State") or "new")


def restart_condition(service: Obj) -> str:
    template = (service.get("Spec") or {}).get("TaskTemplate") or {}
    return str((template.get("RestartPolicy") or {}).get("Condition") or "any")


def _slot_plan(
    service: Obj, tasks: list[Obj], wanted: bool, drained: frozenset[str] = frozenset()
) -> tuple[list[Change], bool]:
    """Changes for one slot (or one node of a global service), and whether a
    new task must be created in it. Tasks on drained nodes are moved away."""
    live = [t for t in tasks if desired_running(t)]
    if not wanted:
        return [StopTask(t["ID"], "remove") for t in live], False
    on_drained = [t for t in live if t.get("NodeID") in drained]
    live = [t for t in live if t.get("NodeID") not in drained]
    active = [t for t in live if observed(t) not in ENDED]
    ended = [t for t in live if observed(t) in ENDED]
    changes: list[Change] = [StopTask(t["ID"], "shutdown") for t in on_drained + ended]
    if on_drained and not active:
        return changes, True
    changes += [StopTask(t["ID"], "shutdown") for t in active[1:]]  # one task a slot
    if active:
        return changes, False
    restart_on = RESTART_ON.get(restart_condition(service), RESTART_ON["any"])
    if ended:
        return changes, any(observed(t) in restart_on for t in ended)
    if not tasks:
        return changes, True
    # Only history here: the slot was scaled away before (create again), or its
    # last task ended and was stopped in an earlier pass (restart per policy).
    last = max(tasks, key=lambda t: str(t.get("UpdatedAt") or ""))
    return changes, last.get("DesiredState") == "remove" or observed(last) in restart_on


def _history(tasks: list[Obj]) -> list[Change]:
    dead = [t for t in tasks if not desired_running(t) and observed(t) in ENDED]
    dead.sort(key=lambda t: str(t.get("UpdatedAt") or ""), reverse=True)
    return [DeleteTask(t["ID"]) for t in dead[HISTORY_PER_SLOT:]]


def plan_replicated(
    service: Obj, tasks: list[Obj], drained: frozenset[str] = frozenset()
) -> list[Change]:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    replicas = int((mode.get("Replicated") or {}).get("Replicas") or 0)
    by_slot: dict[int, list[Obj]] = {}
    for task in tasks:
        by_slot.setdefault(int(task.get("Slot") or 0), []).append(task)
    changes: list[Change] = []
    for slot in sorted(set(by_slot) | set(range(1, replicas + 1))):
        slot_tasks = by_slot.get(slot, [])
        wanted = 1 <= slot <= replicas
        slot_changes, create = _slot_plan(service, slot_tasks, wanted, drained)
        changes += slot_changes
        if create:
            changes.append(CreateTask(service["ID"], slot, ""))
        changes += _history(slot_tasks)
    return changes


def plan_global(service: Obj, tasks: list[Obj], eligible_nodes: list[str]) -> list[Change]:
    by_node: dict[str, list[Obj]] = {}
    for task in tasks:
        by_node.setdefault(str(task.get("NodeID") or ""), []).append(task)
    changes: list[Change] = []
    for node_id in sorted(set(by_node) | set(eligible_nodes)):
        node_tasks = by_node.get(node_id, [])
        wanted = node_id in eligible_nodes
        node_changes, create = _slot_plan(service, node_tasks, wanted)
        changes += node_changes
        if create:
            changes.append(CreateTask(service["ID"], 0, node_id))
        changes += _history(node_tasks)
    return changes
