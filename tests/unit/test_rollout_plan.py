"""Rolling updates and rollbacks: the orchestrator's plans, on plain objects."""

from __future__ import annotations

from typing import Any

from api.base import format_time
from manager.orchestrator.plan import StopTask, plan_global, plan_replicated
from manager.orchestrator.rollout import (
    Replace,
    RollBack,
    RolloutWait,
    SetUpdateStatus,
    StartTask,
)

OLD = {"ContainerSpec": {"Image": "web:1"}}
NEW = {"ContainerSpec": {"Image": "web:2"}}
STARTED = format_time(50 * 10**9)  # the update's StartedAt (tags its tasks)
SECOND = 1_000_000_000


def service(replicas: int = 6, status: str | None = "updating", **update: Any) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "ID": "s",
        "Spec": {
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": NEW,
            "UpdateConfig": {"Parallelism": 2, "Monitor": 5 * SECOND, **update},
            "RollbackConfig": {"Parallelism": 0, "Monitor": SECOND},
        },
        "PreviousSpec": {"Mode": {"Replicated": {"Replicas": replicas}}, "TaskTemplate": OLD},
    }
    if status is not None:
        svc["UpdateStatus"] = {"State": status, "StartedAt": STARTED}
    return svc


def task(
    tid: str,
    slot: int,
    spec: dict[str, Any],
    state: str = "running",
    desired: str = "running",
    ran: float | None = None,
    ended: float = 0.0,
    tagged: bool = False,
) -> dict[str, Any]:
    made: dict[str, Any] = {
        "ID": tid,
        "ServiceID": "s",
        "Slot": slot,
        "NodeID": "n1",
        "Spec": spec,
        "DesiredState": desired,
        "Status": {"State": state, "Timestamp": format_time(int(ended * 1e9))},
        "CreatedAt": format_time(int((ran or ended or 60) * 1e9) - 1),
    }
    if ran is not None:
        made["RunningAt"] = ran
    if tagged:
        made["UpdateStartedAt"] = STARTED
    return made


def old_tasks(slots: range) -> list[dict[str, Any]]:
    return [task(f"old{i}", i, OLD) for i in slots]


def replace(slot: int, held: bool = True, stop: tuple[str, ...] | None = None) -> Replace:
    stop = (f"old{slot}",) if stop is None and held else (stop or ())
    return Replace("s", slot, "", STARTED, held, stop)


def test_an_update_starts_and_replaces_parallelism_slots_stop_first() -> None:
    plan = plan_replicated(service(status=None), old_tasks(range(1, 7)), now=50.0)
    assert plan == [
        SetUpdateStatus("s", "updating", "update in progress", STARTED),
        replace(1),
        replace(2),
    ]


def test_a_scale_alone_is_no_update() -> None:
    tasks = [task(f"t{i}", i, NEW) for i in (1, 2)]
    plan = plan_replicated(service(replicas=2, status=None), tasks, now=50.0)
    assert plan == []


def new_batch(slots: range, ran: float, state: str = "running") -> list[dict[str, Any]]:
    return [task(f"new{i}", i, NEW, state, ran=ran, tagged=True) for i in slots]


def test_the_next_batch_waits_for_the_delay_after_the_last_one_ran() -> None:
    svc = service(Delay=2 * SECOND)
    tasks = new_batch(range(1, 3), ran=60.0) + old_tasks(range(3, 7))
    assert plan_replicated(svc, tasks, now=61.0) == [RolloutWait("s", 62.0)]
    assert plan_replicated(svc, tasks, now=62.5) == [replace(3), replace(4)]


def test_a_batch_still_starting_holds_its_workers() -> None:
    tasks = [task(f"new{i}", i, NEW, "preparing", tagged=True) for i in (1, 2)]
    assert plan_replicated(service(), tasks + old_tasks(range(3, 7)), now=61.0) == []


def test_parallelism_zero_replaces_every_slot_at_once() -> None:
    plan = plan_replicated(service(3, Parallelism=0), old_tasks(range(1, 4)), now=61.0)
    assert plan == [replace(1), replace(2), replace(3)]


def test_a_held_task_starts_once_its_predecessor_stopped() -> None:
    stopping = task("old1", 1, OLD, "running", desired="shutdown")
    held = task("new1", 1, NEW, "ready", desired="ready", tagged=True)
    others = new_batch(range(2, 7), ran=55.0)
    assert StartTask("new1") not in plan_replicated(service(), [stopping, held, *others], now=61.0)
    stopped = dict(stopping, Status={"State": "shutdown"})
    assert StartTask("new1") in plan_replicated(service(), [stopped, held, *others], now=61.0)


def test_start_first_keeps_the_old_task_until_the_new_one_runs() -> None:
    svc = service(2, Order="start-first")
    plan = plan_replicated(svc, old_tasks(range(1, 3)), now=61.0)
    assert plan == [replace(1, held=False), replace(2, held=False)]
    starting = task("new1", 1, NEW, "starting", tagged=True)
    both = [task("old1", 1, OLD), starting]
    assert not any(isinstance(c, StopTask) for c in plan_replicated(svc, both, now=61.0))
    running = dict(starting, Status={"State": "running"}, RunningAt=61.0)
    plan = plan_replicated(svc, [task("old1", 1, OLD), running], now=61.5)
    assert StopTask("old1", "shutdown") in plan


def test_a_new_task_failing_within_monitor_pauses_the_update() -> None:
    failed = task("new1", 1, NEW, "failed", ran=60.0, ended=62.0, tagged=True)
    tasks = [failed, *old_tasks(range(2, 7))]
    plan = plan_replicated(service(), tasks, now=62.5)
    message = "update paused due to failure or early termination of task new1"
    assert SetUpdateStatus("s", "paused", message) in plan
    assert not any(isinstance(c, Replace) for c in plan)
    paused = dict(service(), UpdateStatus={"State": "paused", "StartedAt": STARTED})
    assert not any(isinstance(c, Replace) for c in plan_replicated(paused, tasks, now=63.0))


def test_failure_action_rollback_and_continue() -> None:
    failed = task("new1", 1, NEW, "failed", ran=60.0, ended=62.0, tagged=True)
    tasks = [failed, *old_tasks(range(2, 7))]
    plan = plan_replicated(service(FailureAction="rollback"), tasks, now=62.5)
    message = "update rolled back due to failure or early termination of task new1"
    assert RollBack("s", message, format_time(int(62.5e9))) in plan
    plan = plan_replicated(service(FailureAction="continue"), tasks, now=62.5)
    assert replace(2) in plan  # goes on with the next slots


def test_a_failure_after_the_monitor_window_does_not_count() -> None:
    late = task("new1", 1, NEW, "failed", ran=60.0, ended=70.0, tagged=True)
    plan = plan_replicated(service(), [late, *old_tasks(range(2, 7))], now=70.5)
    assert not any(isinstance(c, SetUpdateStatus) for c in plan)


def test_max_failure_ratio_tolerates_some_failures() -> None:
    failed = task("new1", 1, NEW, "failed", ran=60.0, ended=62.0, tagged=True)
    plan = plan_replicated(
        service(MaxFailureRatio=0.2), [failed, *old_tasks(range(2, 7))], now=62.5
    )
    assert not any(isinstance(c, SetUpdateStatus) for c in plan)


def test_the_update_completes_monitor_after_the_last_task_ran() -> None:
    tasks = new_batch(range(1, 7), ran=60.0)
    assert plan_replicated(service(), tasks, now=62.0) == [RolloutWait("s", 65.0)]
    done = plan_replicated(service(), tasks, now=65.0)
    completed = format_time(65 * SECOND)
    assert done == [SetUpdateStatus("s", "completed", "update completed", "", completed)]


def test_a_rollback_follows_rollback_config_and_completes_as_a_rollback() -> None:
    svc = service(3, status="rollback_started")
    svc["Spec"]["TaskTemplate"] = OLD
    tasks = [task(f"new{i}", i, NEW) for i in (1, 2, 3)]
    plan = plan_replicated(svc, tasks, now=61.0)  # RollbackConfig: all at once
    stops = [Replace("s", i, "", STARTED, True, (f"new{i}",)) for i in (1, 2, 3)]
    assert plan == stops
    back = [task(f"b{i}", i, OLD, ran=61.0, tagged=True) for i in (1, 2, 3)]
    done = plan_replicated(svc, back, now=62.0)  # RollbackConfig's Monitor: 1 s
    completed = format_time(62 * SECOND)
    assert done == [SetUpdateStatus("s", "rollback_completed", "rollback completed", "", completed)]


def test_a_newer_update_supersedes_the_running_one() -> None:
    svc = service(4, status=None)
    svc["Spec"]["TaskTemplate"] = {"ContainerSpec": {"Image": "web:3"}}
    tasks = new_batch(range(1, 3), ran=60.0) + old_tasks(range(3, 5))
    plan = plan_replicated(svc, tasks, now=70.0)
    tag = format_time(70 * SECOND)
    assert plan[0] == SetUpdateStatus("s", "updating", "update in progress", tag)
    assert plan[1:] == [
        Replace("s", 1, "", tag, True, ("new1",)),
        Replace("s", 2, "", tag, True, ("new2",)),
    ]


def test_a_global_service_updates_node_by_node() -> None:
    svc = service(status=None)
    svc["Spec"]["Mode"] = {"Global": {}}
    tasks = [dict(task(f"old{n}", 0, OLD), NodeID=n) for n in ("n1", "n2", "n3")]
    plan = plan_global(svc, tasks, ["n1", "n2", "n3"], now=50.0)
    assert plan[1:] == [
        Replace("s", 0, "n1", STARTED, True, ("oldn1",)),
        Replace("s", 0, "n2", STARTED, True, ("oldn2",)),
    ]
