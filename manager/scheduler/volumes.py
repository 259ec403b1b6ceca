"""Which node holds each volume, for the scheduler's one-node rule. Pure.

A distributed (shoal) volume not created shared is mounted read-write on one
node at a time: two nodes' FUSE mounts writing the same files would corrupt
them, and volumed only sees its own node's mounts. So a task that mounts such
a volume read-write may only go where no other node holds the volume. A node
holds a volume while a task on it mounts it and has not ended (a task stopping
elsewhere still holds it until its container is gone); tasks placed earlier
in the same round count too, so the tasks of a service that share a volume
follow the first one.

A task orphaned by a node that went down still holds its volumes for
ORPHAN_FENCE_SECONDS: the node may only be cut off, its container still
writing. Its agent stops such tasks once it has missed as many heartbeats as
made the managers mark the node down (agent/daemon.py FENCE_PERIODS); the
fence covers that task's stop grace period and the unmount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from api.base import parse_time
from api.task import TaskState
from api.volume_mounts import named_volume_mounts, needs_one_node
from manager.orchestrator.plan import observed, state_rank

Obj = dict[str, Any]
ORPHAN_FENCE_SECONDS = 15.0


def placed_and_live(task: Obj) -> bool:
    """On its node (assigned or later) and not ended: it may mount volumes there."""
    return bool(task.get("NodeID")) and (
        int(TaskState.ASSIGNED) <= state_rank(observed(task)) <= int(TaskState.RUNNING)
    )


def fence_ends(task: Obj) -> float | None:
    """When an orphaned task stops holding its volumes (Unix seconds); None
    for a task that is not orphaned."""
    if observed(task) != "orphaned" or not task.get("NodeID"):
        return None
    try:
        orphaned_at = parse_time(str((task.get("Status") or {}).get("Timestamp"))) / 1e9
    except ValueError:
        return None
    return orphaned_at + ORPHAN_FENCE_SECONDS


class VolumeHolders:
    """volume name -> node ID -> the IDs of the tasks there that mount it."""

    def __init__(
        self, records: Mapping[str, Obj], placed: Iterable[Obj] = (), now: float = 0.0
    ) -> None:
        self.records = records  # the store's volume records, by name
        self.held: dict[str, dict[str, set[str]]] = {}
        self.next_fence_end: float | None = None  # when to look again for a fenced volume
        for task in placed:
            if placed_and_live(task):
                self.hold(task, str(task["NodeID"]))
                continue
            ends = fence_ends(task)
            if ends is not None and ends > now and self.claims(task):
                self.hold(task, str(task["NodeID"]))
                self.next_fence_end = min(ends, self.next_fence_end or ends)

    def hold(self, task: Obj, node_id: str) -> None:
        for mount in named_volume_mounts(task.get("Spec") or {}):
            nodes = self.held.setdefault(str(mount["Source"]), {})
            nodes.setdefault(node_id, set()).add(str(task["ID"]))

    def claims(self, task: Obj) -> tuple[str, ...]:
        """The volumes this task needs to itself on its node, sorted."""
        mounts = named_volume_mounts(task.get("Spec") or {})
        return tuple(sorted({str(m["Source"]) for m in mounts if needs_one_node(m, self.records)}))

    def held_elsewhere(self, task: Obj, claims: tuple[str, ...], node_id: str) -> tuple[str, str]:
        """(volume, the node holding it) for the first claimed volume another
        node holds, or ("", "") when the task may mount them all on node_id."""
        for name in claims:
            for holder, task_ids in sorted(self.held.get(name, {}).items()):
                if holder != node_id and task_ids - {task["ID"]}:
                    return name, holder
        return "", ""
