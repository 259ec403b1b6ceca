"""A task's lifecycle on its node, as a state machine without I/O.

`TaskController.handle(event)` moves the task along an explicit transition
table and returns the instructions the agent carries out (pull, create,
start, stop, remove) and the states it reports to the managers. Observed
states only move forward, as swarmkit's do: assigned → accepted → preparing →
ready → starting → running → complete | failed | shutdown | rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---- events (what happened) -------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    """The dispatcher gave us the task, desired state running (or ready)."""


@dataclass(frozen=True)
class StartReleased:
    """The desired state of a held task went from ready to running."""


@dataclass(frozen=True)
class ShutdownRequested:
    """The desired state went past running (shutdown or remove)."""


@dataclass(frozen=True)
class Prepared:
    """The image is here and the container exists (not started)."""


@dataclass(frozen=True)
class PrepareFailed:
    error: str


@dataclass(frozen=True)
class Started:
    pid: int


@dataclass(frozen=True)
class StartFailed:
    error: str


@dataclass(frozen=True)
class Exited:
    exit_code: int
    oom_killed: bool = False


@dataclass(frozen=True)
class Stopped:
    """The container was stopped because we asked it to."""


@dataclass(frozen=True)
class Healthy:
    """The health check passed (the first pass makes a starting task running)."""


@dataclass(frozen=True)
class Unhealthy:
    """The health check failed Retries times in a row."""


Event = (
    Assigned
    | StartReleased
    | ShutdownRequested
    | Prepared
    | PrepareFailed
    | Started
    | StartFailed
    | Exited
    | Stopped
    | Healthy
    | Unhealthy
)


# ---- instructions (what to do) ----------------------------------------------


@dataclass(frozen=True)
class Report:
    state: str
    message: str
    err: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class Prepare:
    """Pull the image and create the container."""


@dataclass(frozen=True)
class Start:
    """Start the container and watch for its exit."""


@dataclass(frozen=True)
class Stop:
    """Stop the container: its stop signal, the grace period, then SIGKILL."""


@dataclass(frozen=True)
class Remove:
    """Delete the container and what it used on this node."""


Instruction = Report | Prepare | Start | Stop | Remove

ORDER = [
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
    "complete",
    "shutdown",
    "failed",
    "rejected",
]
TERMINAL = {"complete", "shutdown", "failed", "rejected"}


@dataclass
class TaskController:
    task_id: str
    state: str = "assigned"
    shutdown_wanted: bool = False
    # With a health check a started task stays `starting` until it first passes
    # (swarm's rule: only healthy tasks count as running, and get traffic).
    checks_health: bool = False
    # Desired state ready (a stop-first update's new task): prepare, then wait
    # for the old task to stop before starting.
    start_held: bool = False

    def handle(self, event: Event) -> list[Instruction]:
        if self.state in TERMINAL:
            return [Remove()] if isinstance(event, ShutdownRequested) else []
        match event:
            case Assigned() if self.state == "assigned":
                if self.shutdown_wanted:
                    return self._to("shutdown", "shutdown before it ran")
                return [
                    *self._to("accepted", "accepted"),
                    *self._to("preparing", "preparing"),
                    Prepare(),
                ]
            case ShutdownRequested():
                return self._shutdown()
            case Prepared() if self.state == "preparing":
                if self.shutdown_wanted:
                    return [*self._to("shutdown", "shutdown"), Remove()]
                if self.start_held:
                    return self._to("ready", "prepared")
                return [*self._to("ready", "prepared"), *self._to("starting", "starting"), Start()]
            case StartReleased():
                self.start_held = False
                if self.state == "ready" and not self.shutdown_wanted:
                    return [*self._to("starting", "starting"), Start()]
            case PrepareFailed(error=error) if self.state == "preparing":
                return [*self._to("rejected", "preparing failed", err=error), Remove()]
            case Started() if self.state == "starting":
                return [] if self.checks_health else self._to("running", "started")
            case Healthy() if self.state == "starting":
                return self._to("running", "started")
            case Unhealthy() if self.state in ("starting", "running"):
                return [*self._to("failed", "unhealthy", err="task: unhealthy container"), Stop()]
            case StartFailed(error=error) if self.state == "starting":
                return [*self._to("failed", "starting failed", err=error), Remove()]
            case Exited(exit_code=code, oom_killed=oom) if self.state in ("starting", "running"):
                if self.shutdown_wanted:  # nothing will run here again: no stale container
                    return [*self._to("shutdown", "shutdown", exit_code=code), Remove()]
                if code == 0 and not oom:
                    return self._to("complete", "finished", exit_code=0)
                err = "task: OOM killed" if oom else f"task: non-zero exit ({code})"
                return self._to("failed", "started", err=err, exit_code=code)
            case Stopped() if self.shutdown_wanted:
                return [*self._to("shutdown", "shutdown"), Remove()]
        return []

    def _shutdown(self) -> list[Instruction]:
        if self.shutdown_wanted:
            return []
        self.shutdown_wanted = True
        if self.state == "assigned":
            return self._to("shutdown", "shutdown before it ran")
        if self.state in ("accepted", "preparing"):
            return []  # the preparation finishes, then Prepared ends it
        if self.state == "ready":  # prepared, never started
            return [*self._to("shutdown", "shutdown"), Remove()]
        return [Stop()]

    def _to(
        self, state: str, message: str, err: str = "", exit_code: int | None = None
    ) -> list[Instruction]:
        if ORDER.index(state) <= ORDER.index(self.state) and state not in TERMINAL:
            return []  # states only move forward
        self.state = state
        return [Report(state, message, err, exit_code)]
