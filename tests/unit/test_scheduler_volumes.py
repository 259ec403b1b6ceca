"""The scheduler's one-node rule for distributed volumes: a task that mounts
a non-shared shoal volume read-write goes only where no other node holds it."""

from __future__ import annotations

from typing import Any

import pytest

from manager.scheduler.plan import Assign, Decision, NodeLoad, NoSuitableNode, plan_schedule
from manager.scheduler.volumes import VolumeHolders

Obj = dict[str, Any]
pytestmark = pytest.mark.timeout(10)

SHOAL = {"Driver": "shoal", "Options": {"replication": "001", "sharing": "none"}}
RECORDS = {
    "db": {"Name": "db", **SHOAL},
    "shared": {"Name": "shared", "Driver": "shoal", "Options": {"sharing": "all"}},
    "cache": {"Name": "cache", "Driver": "local", "Options": {}},
}


def node(node_id: str, availability: str = "active") -> Obj:
    return {
        "ID": node_id,
        "Description": {"Hostname": f"host-{node_id}"},
        "Spec": {"Availability": availability, "Role": "worker"},
        "Status": {"State": "ready"},
    }


def mount(source: str, read_only: bool = False, driver: str = "") -> Obj:
    m: Obj = {"Type": "volume", "Source": source, "Target": f"/{source}"}
    if read_only:
        m["ReadOnly"] = True
    if driver:
        m["VolumeOptions"] = {"DriverConfig": {"Name": driver}}
    return m


def task(task_id: str, *mounts: Obj, service: str = "s1", slot: int = 1, **extra: Any) -> Obj:
    spec = {"ContainerSpec": {"Image": "busybox", "Mounts": list(mounts)}}
    return {"ID": task_id, "ServiceID": service, "Slot": slot, "Spec": spec, **extra}


def running_on(task_id: str, node_id: str, *mounts: Obj, state: str = "running") -> Obj:
    return task(task_id, *mounts, service="old", NodeID=node_id, Status={"State": state})


def plan(
    pending: list[Obj],
    nodes: list[Obj],
    placed: list[Obj] | None = None,
    loads: dict[str, NodeLoad] | None = None,
) -> list[Decision]:
    holders = VolumeHolders(RECORDS, placed or [])
    return plan_schedule(pending, nodes, {} if loads is None else loads, holders)


NODES = [node("n1"), node("n2"), node("n3")]


def test_a_task_follows_the_node_that_holds_its_volume() -> None:
    decisions = plan([task("t1", mount("db"))], NODES, [running_on("old1", "n3", mount("db"))])
    assert decisions == [Assign("t1", "n3")]


def test_the_holder_being_unavailable_keeps_the_task_pending() -> None:
    nodes = [node("n1"), node("n2"), node("n3", availability="drain")]
    decisions = plan([task("t1", mount("db"))], nodes, [running_on("old1", "n3", mount("db"))])
    assert decisions == [
        NoSuitableNode("t1", "no suitable node (volume db is in use on node host-n3)")
    ]


def test_an_unknown_holder_is_named_by_its_id() -> None:
    placed = [running_on("old1", "gone", mount("db"))]
    decisions = plan([task("t1", mount("db"))], NODES, placed)
    assert decisions == [
        NoSuitableNode("t1", "no suitable node (volume db is in use on node gone)")
    ]


@pytest.mark.parametrize("state", ["complete", "shutdown", "failed", "rejected", "orphaned"])
def test_an_ended_task_holds_nothing(state: str) -> None:
    placed = [running_on("old1", "n3", mount("db"), state=state)]
    assert plan([task("t1", mount("db"))], NODES, placed) == [Assign("t1", "n1")]


@pytest.mark.parametrize("state", ["assigned", "accepted", "preparing", "starting"])
def test_a_task_on_its_way_holds_the_volume(state: str) -> None:
    placed = [running_on("old1", "n2", mount("db"), state=state)]
    assert plan([task("t1", mount("db"))], NODES, placed) == [Assign("t1", "n2")]


def test_a_task_asked_to_stop_holds_the_volume_until_it_has() -> None:
    old = running_on("old1", "n2", mount("db"))
    old["DesiredState"] = "shutdown"
    assert plan([task("t1", mount("db"))], NODES, [old]) == [Assign("t1", "n2")]


@pytest.mark.parametrize(
    "wanted",
    [mount("shared"), mount("cache"), mount("db", read_only=True)],
    ids=["shared volume", "local volume", "read-only mount"],
)
def test_shared_local_and_read_only_mounts_go_anywhere(wanted: Obj) -> None:
    placed = [running_on("old1", "n3", mount(str(wanted["Source"])))]
    assert plan([task("t1", wanted)], NODES, placed) == [Assign("t1", "n1")]


def test_the_tasks_of_a_round_follow_the_first_one() -> None:
    pending = [task(f"t{i}", mount("db"), slot=i) for i in range(1, 4)]
    decisions = plan(pending, NODES)
    assert {d.node_id for d in decisions if isinstance(d, Assign)} == {"n1"}
    assert len(decisions) == 3


def test_a_read_only_task_placed_first_in_the_round_holds_the_volume() -> None:
    reader = task("r1", mount("db", read_only=True), service="a-reader")
    writer = task("w1", mount("db"), service="b-writer")
    busier = {"n1": NodeLoad(total=1)}  # the reader avoids n1, so the writer does too
    decisions = plan([writer, reader], NODES, loads=busier)
    assert decisions == [Assign("r1", "n2"), Assign("w1", "n2")]


def test_a_volume_without_a_record_is_judged_by_the_mount() -> None:
    placed = [running_on("old1", "n2", mount("fresh"))]
    assert plan([task("t1", mount("fresh", driver="shoal"))], NODES, placed) == [Assign("t1", "n2")]
    assert plan([task("t1", mount("fresh"))], NODES, placed) == [Assign("t1", "n1")]


def test_a_volume_held_by_two_nodes_fits_nowhere() -> None:
    placed = [running_on("a", "n1", mount("db")), running_on("b", "n2", mount("db"))]
    decisions = plan([task("t1", mount("db"))], NODES, placed)
    assert decisions == [
        NoSuitableNode("t1", "no suitable node (volume db is in use on node host-n2)")
    ]


def test_the_task_being_placed_does_not_hold_against_itself() -> None:
    holders = VolumeHolders(RECORDS, [running_on("t1", "n1", mount("db"))])
    again = task("t1", mount("db"))
    assert holders.held_elsewhere(again, ("db",), "n2") == ("", "")
    assert holders.held_elsewhere(task("t2", mount("db")), ("db",), "n2") == ("db", "n1")


def test_a_global_task_waiting_on_its_node_holds_nothing_yet() -> None:
    waiting = running_on("g1", "n1", mount("db"), state="pending")
    pending = [task("t1", mount("db"), NodeID="n2")]  # a global task names its node
    assert plan(pending, NODES, [waiting]) == [Assign("t1", "n2")]


def test_a_task_orphaned_by_a_down_node_holds_its_volume_until_the_fence_lapses() -> None:
    orphaned_at = 1_800_000_000.0
    stamp = "2027-01-15T08:00:00Z"  # = orphaned_at
    orphan = task(
        "old", mount("db"), service="old", NodeID="n1",
        Status={"State": "orphaned", "Timestamp": stamp},
    )  # fmt: skip
    nodes = [dict(node("n1"), Status={"State": "down"}), node("n2")]

    early = VolumeHolders(RECORDS, [orphan], now=orphaned_at + 5)
    decisions = plan_schedule([task("new", mount("db"))], nodes, {}, early)
    assert decisions == [
        NoSuitableNode("new", "no suitable node (volume db is in use on node host-n1)")
    ]
    assert early.next_fence_end == orphaned_at + 15  # the reconciler looks again then

    late = VolumeHolders(RECORDS, [orphan], now=orphaned_at + 16)
    assert plan_schedule([task("new", mount("db"))], [node("n2")], {}, late) == [
        Assign("new", "n2")
    ]
    # An orphan that held no exclusive volume fences nothing.
    other = dict(orphan, Spec={"ContainerSpec": {"Mounts": [mount("shared")]}})
    assert VolumeHolders(RECORDS, [other], now=orphaned_at + 5).next_fence_end is None
