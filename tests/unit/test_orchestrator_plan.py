"""The orchestrator's and the scheduler's plans, on plain objects."""

from __future__ import annotations

from typing import Any

from api.base import format_time
from manager.orchestrator import plan
from manager.orchestrator.plan import (
    CreateTask,
    DeleteTask,
    StopTask,
    WaitUntil,
    plan_global_job,
    plan_replicated_job,
)
from manager.scheduler.plan import Assign, NodeLoad, NoSuitableNode, plan_schedule

NOW = 1e10  # long after any test task ended: restart delays have passed


def stamped(svc: Any, tasks: list[Any]) -> list[Any]:
    """Tasks made from the service's current spec (not rolling-update material)."""
    template = svc["Spec"]["TaskTemplate"]
    return [t if "Spec" in t else dict(t, Spec=template) for t in tasks]


def plan_replicated(
    svc: Any, tasks: list[Any], drained: frozenset[str] = frozenset(), now: float = NOW
) -> Any:
    return plan.plan_replicated(svc, stamped(svc, tasks), drained, now=now)


def plan_global(svc: Any, tasks: list[Any], nodes: list[str], now: float = NOW) -> Any:
    return plan.plan_global(svc, stamped(svc, tasks), nodes, now=now)


def replicated(svc: Any, tasks: Any, drained: frozenset[str] = frozenset()) -> Any:
    return plan_replicated(svc, tasks, drained, now=NOW)


def replicated_job(svc: Any, tasks: Any) -> Any:
    return plan_replicated_job(svc, tasks, now=NOW)


def global_plan(svc: Any, tasks: Any, nodes: Any) -> Any:
    return plan_global(svc, tasks, nodes, now=NOW)


def service(replicas: int = 3, restart: str = "any") -> dict[str, Any]:
    return {
        "ID": "s",
        "Spec": {
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {"RestartPolicy": {"Condition": restart}},
        },
    }


def task(
    tid: str,
    slot: int,
    state: str = "running",
    desired: str = "running",
    node: str = "",
    updated: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    return {
        "ID": tid,
        "ServiceID": "s",
        "Slot": slot,
        "NodeID": node,
        "DesiredState": desired,
        "Status": {"State": state},
        "UpdatedAt": updated,
    }


def test_a_new_service_gets_one_task_per_slot() -> None:
    assert replicated(service(3), []) == [CreateTask("s", i, "") for i in (1, 2, 3)]


def test_a_whole_service_needs_nothing() -> None:
    assert replicated(service(2), [task("a", 1), task("b", 2, "pending")]) == []


def test_a_failed_task_is_shut_down_and_replaced_in_its_slot() -> None:
    plan = replicated(service(2), [task("a", 1), task("b", 2, "failed")])
    assert plan == [StopTask("b", "shutdown"), CreateTask("s", 2, "", (NOW,))]


def test_restart_condition_none_and_on_failure() -> None:
    assert replicated(service(1, "none"), [task("a", 1, "failed")]) == [StopTask("a", "shutdown")]
    assert replicated(service(1, "on-failure"), [task("a", 1, "complete")]) == [
        StopTask("a", "shutdown")
    ]
    assert replicated(service(1, "on-failure"), [task("a", 1, "failed")]) == [
        StopTask("a", "shutdown"),
        CreateTask("s", 1, "", (NOW,)),
    ]


def test_scale_down_removes_the_high_slots_and_scale_up_refills_them() -> None:
    tasks = [task("a", 1), task("b", 2), task("c", 3)]
    assert replicated(service(1), tasks) == [StopTask("b", "remove"), StopTask("c", "remove")]
    removed = [task("a", 1), task("b", 2, "shutdown", "remove"), task("c", 3, "shutdown", "remove")]
    assert replicated(service(3), removed) == [CreateTask("s", 2, ""), CreateTask("s", 3, "")]


def test_history_is_kept_to_five_tasks_a_slot() -> None:
    old = [
        task(f"o{i}", 1, "failed", "shutdown", updated=f"2026-01-01T00:00:0{i}Z") for i in range(7)
    ]
    plan = replicated(service(1), [task("live", 1), *old])
    assert plan == [DeleteTask("o1"), DeleteTask("o0")]


def test_global_services_run_one_task_per_eligible_node() -> None:
    glob = {"ID": "s", "Spec": {"Mode": {"Global": {}}, "TaskTemplate": {}}}
    plan = global_plan(glob, [task("a", 0, node="n1"), task("x", 0, node="gone")], ["n1", "n2"])
    assert plan == [StopTask("x", "remove"), CreateTask("s", 0, "n2")]


def node(
    nid: str,
    role: str = "worker",
    state: str = "ready",
    availability: str = "active",
    labels: dict[str, str] | None = None,
    cpus: int = 4_000_000_000,
) -> dict[str, Any]:
    return {
        "ID": nid,
        "Spec": {"Role": role, "Availability": availability, "Labels": labels or {}},
        "Description": {
            "Hostname": f"host-{nid}",
            "Resources": {"NanoCPUs": cpus, "MemoryBytes": 8 << 30},
        },
        "Status": {"State": state},
    }


def pending(tid: str, slot: int, **placement: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"Placement": placement}
    if "cpus" in placement:
        spec = {"Placement": {}, "Resources": {"Reservations": {"NanoCPUs": placement["cpus"]}}}
    return {"ID": tid, "ServiceID": "s", "Slot": slot, "Spec": spec, "Status": {"State": "pending"}}


def test_spread_evens_out_across_nodes() -> None:
    nodes = [node("n1"), node("n2"), node("n3")]
    decisions = plan_schedule([pending(f"t{i}", i) for i in range(6)], nodes, {})
    placed = [d.node_id for d in decisions if isinstance(d, Assign)]
    assert sorted(placed) == ["n1", "n1", "n2", "n2", "n3", "n3"]


def test_filters_and_their_reasons() -> None:
    nodes = [
        node("m", role="manager"),
        node("down", state="down"),
        node("drained", availability="drain"),
    ]
    only_workers = pending("t", 1, Constraints=["node.role==worker"])
    assert plan_schedule([only_workers], nodes, {}) == [
        NoSuitableNode(
            "t",
            (
                "no suitable node (node is not active on 1 node; node is not ready on 1 node; "
                "scheduling constraints not satisfied on 1 node)"
            ),
        )
    ]
    labelled = [node("a", labels={"zone": "x"}), node("b", labels={"zone": "y"})]
    decisions = plan_schedule([pending("t", 1, Constraints=["node.labels.zone!=x"])], labelled, {})
    assert decisions == [Assign("t", "b")]


def test_reservations_and_max_replicas_per_node() -> None:
    nodes = [node("a", cpus=2_000_000_000)]
    big = [pending("t1", 1, cpus=1_500_000_000), pending("t2", 2, cpus=1_500_000_000)]
    first, second = plan_schedule(big, nodes, {})
    assert first == Assign("t1", "a")
    assert second == NoSuitableNode("t2", "no suitable node (insufficient resources on 1 node)")
    capped = [pending(f"t{i}", i, MaxReplicas=1) for i in (1, 2)]
    loads: dict[str, NodeLoad] = {}
    assert plan_schedule(capped, [node("a"), node("b")], loads) == [
        Assign("t1", "a"),
        Assign("t2", "b"),
    ]


def test_spread_placement_preference_balances_label_values() -> None:
    nodes = [
        node("a1", labels={"rack": "a"}),
        node("a2", labels={"rack": "a"}),
        node("b1", labels={"rack": "b"}),
    ]
    prefs = [{"Spread": {"SpreadDescriptor": "node.labels.rack"}}]
    decisions = plan_schedule([pending(f"t{i}", i, Preferences=prefs) for i in range(4)], nodes, {})
    racks = [d.node_id[0] for d in decisions if isinstance(d, Assign)]
    assert sorted(racks) == ["a", "a", "b", "b"]


def test_tasks_on_a_drained_node_move_elsewhere() -> None:
    tasks = [task("a", 1, node="n1"), task("b", 2, node="drained")]
    plan = replicated(service(2), tasks, frozenset({"drained"}))
    assert plan == [StopTask("b", "shutdown"), CreateTask("s", 2, "")]


def policy_service(**policy: int | str) -> dict[str, Any]:
    svc = service(1)
    svc["Spec"]["TaskTemplate"]["RestartPolicy"] = dict(policy)
    return svc


def ended(tid: str, state: str, at: float, restarts: tuple[float, ...] = ()) -> dict[str, Any]:
    failed = task(tid, 1, state)
    failed["Status"]["Timestamp"] = format_time(int(at * 1e9))
    failed["Restarts"] = list(restarts)
    return failed


def test_a_restart_waits_for_the_delay_default_5_seconds() -> None:
    svc = service(1)
    failed = [ended("a", "failed", 100.0)]
    assert plan_replicated(svc, failed, now=102.0) == [
        StopTask("a", "shutdown"),
        WaitUntil("s", 105.0),
    ]
    stopped = [dict(failed[0], DesiredState="shutdown")]
    assert plan_replicated(svc, stopped, now=105.5) == [CreateTask("s", 1, "", (105.5,))]
    quick = policy_service(Delay=1_000_000_000)
    assert plan_replicated(quick, stopped, now=101.5) == [CreateTask("s", 1, "", (101.5,))]


def test_max_attempts_counts_restarts_per_slot_within_the_window() -> None:
    svc = policy_service(Condition="on-failure", Delay=0, MaxAttempts=2)
    first = plan_replicated(svc, [ended("a", "failed", 10.0)], now=10.0)
    assert first[-1] == CreateTask("s", 1, "", (10.0,))
    second = plan_replicated(svc, [ended("b", "failed", 20.0, (10.0,))], now=20.0)
    assert second[-1] == CreateTask("s", 1, "", (10.0, 20.0))
    third = plan_replicated(svc, [ended("c", "failed", 30.0, (10.0, 20.0))], now=30.0)
    assert third == [StopTask("c", "shutdown")]  # exactly 2 restarts, then it stays down
    windowed = policy_service(Delay=0, MaxAttempts=2, Window=15_000_000_000)
    again = plan_replicated(windowed, [ended("c", "failed", 30.0, (10.0, 20.0))], now=30.0)
    assert again[-1] == CreateTask("s", 1, "", (20.0, 30.0))  # 10.0 fell out of the window


def test_a_task_orphaned_by_a_down_node_is_replaced_without_the_delay() -> None:
    plan = plan_replicated(service(1), [ended("a", "orphaned", 100.0)], now=100.1)
    assert plan == [StopTask("a", "shutdown"), CreateTask("s", 1, "", (100.1,))]


def job(total: int, concurrent: int) -> dict[str, Any]:
    return {
        "ID": "s",
        "SpecVersion": 1,
        "JobStatus": {"JobIteration": {"Index": 1}},
        "Spec": {
            "Mode": {"ReplicatedJob": {"MaxConcurrent": concurrent, "TotalCompletions": total}},
            "TaskTemplate": {"RestartPolicy": {"Condition": "on-failure", "Delay": 0}},
        },
    }


def job_task(tid: str, slot: int, state: str) -> dict[str, Any]:
    return dict(task(tid, slot, state), JobIteration={"Index": 1})


def test_a_replicated_job_runs_max_concurrent_until_total_completions() -> None:
    assert replicated_job(job(5, 2), []) == [  # job slots count from 0, as swarmkit's
        CreateTask("s", 0, "", (), 1),
        CreateTask("s", 1, "", (), 1),
    ]
    two_running = [job_task("a", 0, "running"), job_task("b", 1, "running")]
    assert replicated_job(job(5, 2), two_running) == []
    one_done = [job_task("a", 0, "complete"), job_task("b", 1, "running")]
    assert replicated_job(job(5, 2), one_done) == [CreateTask("s", 2, "", (), 1)]
    failed = [job_task("a", 0, "complete"), job_task("b", 1, "failed")]
    assert replicated_job(job(5, 2), failed)[:2] == [
        StopTask("b", "shutdown"),
        CreateTask("s", 1, "", (NOW,), 1),
    ]
    finished = [job_task(f"t{i}", i, "complete") for i in range(5)]
    assert replicated_job(job(5, 2), finished) == []  # complete, and it stays so


def test_a_global_job_runs_once_on_each_node() -> None:
    svc = job(1, 1)
    svc["Spec"]["Mode"] = {"GlobalJob": {}}
    done = [dict(job_task("a", 0, "complete"), NodeID="n1")]
    assert plan_global_job(svc, done, ["n1", "n2"], now=NOW) == [CreateTask("s", 0, "n2", (), 1)]
