"""The agent's task state machine: what it reports and what it asks for."""

from __future__ import annotations

from agent.controller import (
    Assigned,
    Exited,
    Healthy,
    Instruction,
    Prepare,
    Prepared,
    PrepareFailed,
    Remove,
    Report,
    ShutdownRequested,
    Start,
    Started,
    StartFailed,
    StartReleased,
    Stop,
    TaskController,
    Unhealthy,
)
from agent.health import HealthCheck, health_check


def states(instructions: list[Instruction]) -> list[str]:
    return [i.state for i in instructions if isinstance(i, Report)]


def test_the_happy_path_reports_every_state_in_order() -> None:
    c = TaskController("t")
    first = c.handle(Assigned())
    assert states(first) == ["accepted", "preparing"] and first[-1] == Prepare()
    second = c.handle(Prepared())
    assert states(second) == ["ready", "starting"] and second[-1] == Start()
    assert states(c.handle(Started(pid=42))) == ["running"]
    done = c.handle(Exited(0))
    assert done == [Report("complete", "finished", "", 0)]


def test_failures_carry_dockers_errors() -> None:
    c = TaskController("t")
    c.handle(Assigned())
    c.handle(Prepared())
    c.handle(Started(pid=1))
    assert c.handle(Exited(1)) == [Report("failed", "started", "task: non-zero exit (1)", 1)]
    oom = TaskController("o")
    for event in (Assigned(), Prepared(), Started(pid=1)):
        oom.handle(event)
    assert oom.handle(Exited(137, oom_killed=True))[0].err == "task: OOM killed"  # type: ignore[union-attr]


def test_a_task_that_cannot_be_prepared_or_started_is_rejected_or_failed() -> None:
    c = TaskController("t")
    c.handle(Assigned())
    assert c.handle(PrepareFailed("image x not found")) == [
        Report("rejected", "preparing failed", "image x not found"),
        Remove(),
    ]
    s = TaskController("s")
    s.handle(Assigned())
    s.handle(Prepared())
    assert states(s.handle(StartFailed("exec format error"))) == ["failed"]


def test_shutdown_stops_a_running_task_and_is_reported_as_shutdown() -> None:
    c = TaskController("t")
    for event in (Assigned(), Prepared(), Started(pid=1)):
        c.handle(event)
    assert c.handle(ShutdownRequested()) == [Stop()]
    assert c.handle(ShutdownRequested()) == []  # asked twice: one stop
    assert c.handle(Exited(143)) == [Report("shutdown", "shutdown", "", 143), Remove()]
    assert c.handle(ShutdownRequested()) == [Remove()]  # ended: clean up


def test_shutdown_during_preparation_waits_for_it_then_removes() -> None:
    c = TaskController("t")
    c.handle(Assigned())
    assert c.handle(ShutdownRequested()) == []
    assert c.handle(Prepared()) == [Report("shutdown", "shutdown"), Remove()]
    early = TaskController("e")
    assert states(early.handle(ShutdownRequested())) == ["shutdown"]
    assert early.handle(Assigned()) == []


def test_states_never_go_backwards_and_stray_events_are_ignored() -> None:
    c = TaskController("t")
    c.handle(Assigned())
    assert c.handle(Started(pid=1)) == []  # not starting yet
    assert c.handle(Exited(0)) == []
    assert c.state == "preparing"


def test_with_a_health_check_a_task_runs_once_healthy_and_fails_unhealthy() -> None:
    c = TaskController("t", checks_health=True)
    for event in (Assigned(), Prepared()):
        c.handle(event)
    assert c.handle(Started(pid=1)) == []  # still starting: not yet healthy
    assert c.state == "starting"
    assert c.handle(Healthy()) == [Report("running", "started")]
    assert c.handle(Unhealthy()) == [
        Report("failed", "unhealthy", "task: unhealthy container"),
        Stop(),
    ]
    assert c.handle(Exited(137)) == []  # it failed already: the exit changes nothing


def test_health_check_specs() -> None:
    assert health_check(None) is None and health_check({"Test": ["NONE"]}) is None
    shell = health_check({"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 2_000_000_000})
    assert shell == HealthCheck(("/bin/sh", "-c", "test -f /ok"), interval=2.0)
    exec_form = health_check({"Test": ["CMD", "true"], "Retries": 1, "StartPeriod": 10**9})
    assert exec_form == HealthCheck(("true",), retries=1, start_period=1.0)


def test_a_held_task_is_prepared_and_starts_only_when_released() -> None:
    c = TaskController("t", start_held=True)  # desired state ready: a stop-first update
    c.handle(Assigned())
    assert c.handle(Prepared()) == [Report("ready", "prepared")]  # the container waits
    released = c.handle(StartReleased())
    assert states(released) == ["starting"] and released[-1] == Start()
    held = TaskController("h", start_held=True)
    held.handle(Assigned())
    held.handle(Prepared())
    assert held.handle(ShutdownRequested()) == [Report("shutdown", "shutdown"), Remove()]
    early = TaskController("e", start_held=True)  # released while still preparing
    early.handle(Assigned())
    assert early.handle(StartReleased()) == []
    assert states(early.handle(Prepared())) == ["ready", "starting"]
