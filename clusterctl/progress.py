"""Waiting for a service to converge, shown as `docker service create` shows it
(docker-api.md §4): `overall progress: N out of M tasks`, a line per slot (per
node for global services) with the task's state, the monitor wait, then
`verify: Service converged`.

`snapshot` is pure (service, tasks, nodes → what to show); `Watch` polls and
stops at convergence or on an UpdateStatus that ends the wait; the displays
redraw in place on a terminal and print plain changed lines otherwise.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import click
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

Obj = dict[str, Any]
Fetch = Callable[[], tuple[Obj, list[Obj], list[Obj]]]

# The bar's steps, as the docker CLI counts them: running is 9 out of 9.
STEPS: tuple[str, ...] = ("new", "allocated", "pending", "assigned", "accepted", "preparing")
STEPS += ("ready", "starting", "running")
ORDER = {state: rank for rank, state in enumerate((*STEPS, "complete", "shutdown", "failed"))}
ORDER |= {"rejected": 12, "remove": 13, "orphaned": 14}
IGNORED = {"", "remove", "orphaned"}
MAX_LINES = 20
BAR_WIDTH = 50
DEFAULT_MONITOR_NS = 5_000_000_000


@dataclass(frozen=True)
class Line:
    """One slot (or node): its label (`2/3`, a hostname), state and error."""

    label: str
    state: str
    error: str = ""

    def plain(self) -> str:
        return f"{self.label}: {self.error or self.state}"

    def rich(self) -> str:
        if self.error:
            return self.plain()
        step = STEPS.index(self.state) + 1 if self.state in STEPS else len(STEPS)
        filled = step * BAR_WIDTH // len(STEPS)
        bar = "=" * (filled - 1) + ">" + " " * (BAR_WIDTH - filled)
        return f"{self.label}: {self.state:<10}[{bar}]"


@dataclass
class Snapshot:
    done: int
    total: int
    job: bool
    lines: list[Line] = field(default_factory=list)
    per_node: bool = False

    @property
    def converged(self) -> bool:
        # A global service has no task on its first polls: not converged yet.
        return self.done >= self.total and (self.total > 0 or not self.per_node)


def _rank(state: str) -> int:
    return ORDER.get(state, len(ORDER))


def _live(tasks: list[Obj], nodes: list[Obj]) -> list[Obj]:
    """Tasks to count: not removed, and not on a node that is down."""
    down = {n["ID"] for n in nodes if (n.get("Status") or {}).get("State") == "down"}
    return [
        t
        for t in tasks
        if (t.get("Status") or {}).get("State", "") not in IGNORED
        and t.get("DesiredState") not in IGNORED
        and not (t.get("NodeID") and t["NodeID"] in down)
    ]


def _first_by(tasks: list[Obj], key: Callable[[Obj], Any]) -> dict[Any, Obj]:
    """Per slot (or node), the task with the lowest desired state."""
    chosen: dict[Any, Obj] = {}
    for task in tasks:
        k = key(task)
        if k not in chosen or _rank(task["DesiredState"]) < _rank(chosen[k]["DesiredState"]):
            chosen[k] = task
    return chosen


def _line(label: str, task: Obj) -> Line:
    status = task.get("Status") or {}
    return Line(label, status.get("State", ""), status.get("Err") or "")


def _reached(task: Obj, job: bool) -> bool:
    state = (task.get("Status") or {}).get("State")
    if job:
        return bool(state == "complete")
    return _rank(task["DesiredState"]) <= _rank("running") and state == "running"


def snapshot(service: Obj, tasks: list[Obj], nodes: list[Obj]) -> Snapshot:
    """What the display shows for one poll; tasks are the up-to-date ones."""
    mode = service["Spec"].get("Mode") or {}
    job = "ReplicatedJob" in mode or "GlobalJob" in mode
    live = _live(tasks, nodes)
    if "Replicated" in mode or "ReplicatedJob" in mode:
        if "Replicated" in mode:
            total = int(mode["Replicated"].get("Replicas") or 0)
        else:
            total = int(mode["ReplicatedJob"].get("TotalCompletions") or 0)
        by_slot = _first_by([t for t in live if 0 < (t.get("Slot") or 0) <= total], _slot)
        lines = [_line(f"{s}/{total}", t) for s, t in sorted(by_slot.items())]
        done = sum(_reached(t, job) for t in by_slot.values())
        if job:  # a job's slots may hold several tasks that completed
            done = min(total, sum(_reached(t, job) for t in live))
        return Snapshot(done, total, job, lines if total <= MAX_LINES else [])
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname") or n["ID"] for n in nodes}
    wanted = [t for t in live if t.get("NodeID") and _rank(t["DesiredState"]) <= _rank("complete")]
    by_node = _first_by(wanted, lambda t: t["NodeID"])
    named = sorted((hostnames.get(n, n[:12]), t) for n, t in by_node.items())
    lines = [_line(name, task) for name, task in named]
    done = sum(_reached(t, job) for t in by_node.values())
    shown = lines if len(lines) <= MAX_LINES else []
    return Snapshot(done, len(by_node), job, shown, per_node=True)


def _slot(task: Obj) -> int:
    return int(task.get("Slot") or 0)


class Display(Protocol):
    def show(self, rows: list[tuple[str, str, str]]) -> None:
        """rows: (key, plain text, terminal text), top to bottom."""

    def close(self) -> None: ...


class PlainDisplay:
    """No terminal: a line each time a row's text changes, no control codes."""

    def __init__(self) -> None:
        self.shown: dict[str, str] = {}

    def show(self, rows: list[tuple[str, str, str]]) -> None:
        for key, plain, _ in rows:
            if self.shown.get(key) != plain:
                self.shown[key] = plain
                click.echo(plain)

    def close(self) -> None:
        pass


class LiveDisplay:
    """A terminal: the rows redrawn in place."""

    def __init__(self) -> None:
        self.live = Live(console=Console(highlight=False), auto_refresh=False)
        self.live.start()

    def show(self, rows: list[tuple[str, str, str]]) -> None:
        self.live.update(Group(*(Text(text) for _, _, text in rows)), refresh=True)

    def close(self) -> None:
        self.live.stop()


def display_for_stdout() -> Display:
    terminal = sys.stdout.isatty()
    return LiveDisplay() if terminal else PlainDisplay()


@dataclass
class Watch:
    """Polls until the service converges. `rollback` says the operation is a
    rollback (its completion is the success, not a failure)."""

    fetch: Fetch
    display: Display
    rollback: bool = False
    interval: float = 0.3
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rolling_back: bool = False
    messages: list[tuple[str, str, str]] = field(default_factory=list)

    def run(self) -> None:
        converged_at: float | None = None
        try:
            while True:
                service, tasks, nodes = self.fetch()
                shot = snapshot(service, tasks, nodes)
                if self._status_ends_wait(service, shot):
                    return
                rows = self._rows(shot)
                if shot.converged and shot.job:
                    self.display.show([*rows, ("verify", "job complete", "job complete")])
                    return
                if shot.converged:
                    converged_at = self.clock() if converged_at is None else converged_at
                    monitor = _monitor_seconds(service)
                    left = monitor - (self.clock() - converged_at)
                    if left <= 0:
                        self.display.show([*rows, _verify("Service converged")])
                        return
                    waiting = "Waiting {} seconds to verify that tasks are stable..."
                    plain = _verify(waiting.format(math.ceil(monitor)))[1]
                    rows.append(("verify", plain, _verify(waiting.format(math.ceil(left)))[2]))
                elif converged_at is not None:
                    converged_at = None
                    rows.append(_verify("Detected task failure"))
                self.display.show(rows)
                self.sleep(self.interval)
        finally:
            self.display.close()

    def _rows(self, shot: Snapshot) -> list[tuple[str, str, str]]:
        label = "rolling back update" if self.rolling_back or self.rollback else "overall progress"
        overall = f"{label}: {shot.done} out of {shot.total} tasks"
        rows = [*self.messages, ("overall", overall, overall)]
        rows += [(f"task {line.label}", line.plain(), line.rich()) for line in shot.lines]
        return rows

    def _status_ends_wait(self, service: Obj, shot: Snapshot) -> bool:
        status = service.get("UpdateStatus") or {}
        state, message = status.get("State", ""), status.get("Message", "")
        if state == "paused":
            raise click.ClickException(f"service update paused: {message}")
        if state == "rollback_paused":
            raise click.ClickException(f"service rollback paused: {message}")
        if state == "rollback_started" and not self.rolling_back:
            self.rolling_back = True
            self.messages.append(("rollback", f"rollback: {message}", f"rollback: {message}"))
        if state == "rollback_completed" and not self.rollback:
            raise click.ClickException(f"service rolled back: {message}")
        if state in ("completed", "rollback_completed"):
            # The manager finished the update, its own monitor wait included.
            self.display.show([*self._rows(shot), _verify("Service converged")])
            return True
        return False


def _verify(text: str) -> tuple[str, str, str]:
    return ("verify", f"verify: {text}", f"verify: {text}")


def _monitor_seconds(service: Obj) -> float:
    monitor = (service["Spec"].get("UpdateConfig") or {}).get("Monitor") or DEFAULT_MONITOR_NS
    return float(monitor) / 1e9


class SilentDisplay:
    """--quiet: wait, show nothing."""

    def show(self, rows: list[tuple[str, str, str]]) -> None:
        pass

    def close(self) -> None:
        pass
