"""The agent's worker: one runner per assigned task, feeding the task's
controller with what happens and carrying out what it asks, through the
runtime. Containers are named by task ID and labelled, so a restarted agent
adopts the ones still running and removes those it no longer holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from agent.controller import (
    TERMINAL,
    Assigned,
    Event,
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
from agent.network import Networks
from agent.task_files import TaskFiles
from agent.volumes import TaskVolumes, volume_mounts
from api.base import now_time as now
from api.container_spec import ContainerSpec, Limits
from runtime.protocol import ContainerConfig, ContainerRuntime

Obj = dict[str, Any]
TASK_LABEL = "shoal.task.id"
SERVICE_LABEL = "shoal.service.id"
log = logging.getLogger("shoal.agent")


def desired_running(task: Obj) -> bool:
    return str(task.get("DesiredState") or "running") in ("running", "ready", "accepted")


def container_config(
    task: Obj,
    netns: str | None = None,
    resolv_conf: Path | None = None,
    extra_mounts: list[Obj] | None = None,
    volume_paths: dict[str, str] | None = None,
) -> ContainerConfig:
    """The container of a task; `volume_paths` says where on this host each
    named volume it mounts is (volumed mounted them)."""
    template = task.get("Spec") or {}
    container = dict(template.get("ContainerSpec") or {})
    mounts = [*(container.get("Mounts") or []), *(extra_mounts or [])]
    paths = volume_paths or {}
    for index, name, mount in volume_mounts(task):
        if name in paths:
            mounts[index] = {**mount, "Source": paths[name]}
    container["Mounts"] = mounts
    spec = msgspec.convert(container, ContainerSpec, strict=False)
    limits = msgspec.convert(
        ((template.get("Resources") or {}).get("Limits") or {}), Limits, strict=False
    )
    labels = {TASK_LABEL: task["ID"], SERVICE_LABEL: str(task.get("ServiceID", ""))}
    return ContainerConfig(
        task["ID"], spec, limits=limits, netns_path=netns, resolv_conf=resolv_conf, labels=labels
    )


PullObserver = Callable[[float, bool], None]  # (seconds, succeeded), for /metrics


def _ignore_pull(seconds: float, ok: bool) -> None:
    return None


class TaskRunner:
    def __init__(
        self,
        task: Obj,
        runtime: ContainerRuntime,
        report: Callable[[Obj], None],
        on_pull: PullObserver = _ignore_pull,
        networks: Networks | None = None,
        files: TaskFiles | None = None,
        volumes: TaskVolumes | None = None,
    ) -> None:
        self.task = task
        self.runtime = runtime
        self.report = report
        self.on_pull = on_pull
        self.networks = networks
        self.files = files
        self.volumes = volumes
        self.volumes_held = False  # volumed mounted this task's volumes
        container_spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        self.health: HealthCheck | None = health_check(container_spec.get("Healthcheck"))
        self.controller = TaskController(
            task["ID"],
            checks_health=self.health is not None,
            start_held=task.get("DesiredState") == "ready",
        )
        self._prober: asyncio.Task[None] | None = None
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.pid = 0
        self.exit_code: int | None = None
        self.stopping = False  # a shutdown was asked for already
        self.gone = False  # the task left the cluster: remove the container when it ends
        self._waiter: asyncio.Task[None] | None = None

    def shut_down(self, gone: bool = False) -> None:
        self.gone = self.gone or gone
        if not self.stopping or gone:  # gone: wake the runner so it removes the container
            self.stopping = True
            self.events.put_nowait(ShutdownRequested())

    def release(self) -> None:
        """The task may start now (its desired state went from ready to running)."""
        if self.controller.start_held:
            self.events.put_nowait(StartReleased())

    def adopt(self, running: bool) -> None:
        """A container of this task survived an agent restart."""
        self.volumes_held = bool(volume_mounts(self.task))  # volumed kept the mounts
        if not running:  # created, never started: it starts when it may
            self.controller.state = "ready"
            if not self.controller.start_held:
                self.events.put_nowait(StartReleased())
            return
        self.controller.state = "running"
        self._waiter = asyncio.create_task(self._wait_exit())
        if self.health is not None:  # the check goes on where it was
            self._prober = asyncio.create_task(self._probe(self.health))

    async def run(self) -> None:
        try:
            while True:
                event = await self.events.get()
                for instruction in self.controller.handle(event):
                    await self._carry_out(instruction)
                if self.gone and self.controller.state in TERMINAL:
                    await self._carry_out(Remove())
                    return
        finally:
            if self._prober is not None:
                self._prober.cancel()

    async def _carry_out(self, instruction: Instruction) -> None:
        task_id = self.task["ID"]
        match instruction:
            case Report(state=state, message=message, err=err, exit_code=code):
                if state in TERMINAL and not self._container_running():
                    # Before the manager hears of it: the next task using a
                    # distributed volume may then mount it on another node.
                    await self._release_volumes()
                status: Obj = {"Timestamp": now(), "State": state, "Message": message}
                if err:
                    status["Err"] = err
                container: Obj = {"ContainerID": task_id, "PID": self.pid}
                if code is not None:
                    container["ExitCode"] = code
                status["ContainerStatus"] = container
                self.report({"TaskID": task_id, "Status": status})
            case Prepare():
                try:
                    config = container_config(self.task)
                    await self._pull(config.spec.image)
                    mounts = await self.files.prepare(self.task) if self.files else []
                    paths = None
                    if self.volumes is not None and volume_mounts(self.task):
                        self.volumes_held = True
                        paths = await self.volumes.prepare(self.task)
                    netns, resolv = None, None
                    if self.networks is not None:
                        attached = await self.networks.attach(self.task)
                        netns, resolv = attached.netns, attached.resolv_conf
                    config = container_config(self.task, netns, resolv, mounts, paths)
                    await self.runtime.create(config)
                except Exception as exc:  # every failure of a user's task is reported
                    self.events.put_nowait(PrepareFailed(str(exc)))
                else:
                    self.events.put_nowait(Prepared())
            case Start():
                try:
                    self.pid = await self.runtime.start(task_id)
                except Exception as exc:
                    self.events.put_nowait(StartFailed(str(exc)))
                else:
                    self._waiter = asyncio.create_task(self._wait_exit())
                    self.events.put_nowait(Started(self.pid))
                    if self.health is not None:
                        self._prober = asyncio.create_task(self._probe(self.health))
            case Stop():
                with contextlib.suppress(Exception):
                    await self.runtime.stop(task_id)
                if self.controller.state in TERMINAL:  # an unhealthy task, stopped after its report
                    await self._release_volumes()
            case Remove():
                with contextlib.suppress(Exception):
                    # Its logs stay for `service logs` until the task leaves the cluster.
                    await self.runtime.delete(task_id, remove_logs=self.gone)
                if self.networks is not None:
                    with contextlib.suppress(Exception):
                        await self.networks.detach(task_id)
                if self.files is not None:
                    with contextlib.suppress(Exception):
                        await self.files.release(task_id)
                await self._release_volumes()
                if self.gone and self.volumes is not None and volume_mounts(self.task):
                    with contextlib.suppress(Exception):
                        await self.volumes.forget(self.task)

    def _container_running(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    async def _release_volumes(self) -> None:
        if self.volumes is not None and self.volumes_held:
            try:
                await self.volumes.release(self.task)
            except Exception as exc:  # tried again when the container is removed
                log.warning("task %s: volumes not released: %s", self.task["ID"], exc)
            else:
                self.volumes_held = False

    async def _probe(self, check: HealthCheck) -> None:
        """Docker's health check: every Interval, the command within Timeout;
        Retries failures in a row (not counting those in StartPeriod before the
        first pass) make the task unhealthy."""
        started, failures, healthy = time.monotonic(), 0, False
        while self.controller.state not in TERMINAL:
            await asyncio.sleep(check.interval)
            try:
                result = await self.runtime.exec(
                    self.task["ID"], list(check.argv), timeout=check.timeout
                )
                passed = result.exit_code == 0
            except Exception:  # a timeout or a vanished container is a failed check
                passed = False
            if passed:
                failures = 0
                if not healthy:
                    healthy = True
                    self.events.put_nowait(Healthy())
                continue
            if not healthy and time.monotonic() - started < check.start_period:
                continue
            failures += 1
            if failures >= check.retries:
                self.events.put_nowait(Unhealthy())
                return

    async def _pull(self, image: str) -> None:
        started = time.monotonic()
        try:
            summary = await self.runtime.pull(image)
        except Exception:
            self.on_pull(time.monotonic() - started, False)
            raise
        self.on_pull(time.monotonic() - started, True)
        container_spec = (self.task.get("Spec") or {}).get("ContainerSpec") or {}
        if "Healthcheck" not in container_spec:  # the spec's check, or else the image's
            image_config = summary.config.get("config") or {}
            if isinstance(image_config, dict):
                self.health = health_check(image_config.get("Healthcheck"))
                self.controller.checks_health = self.health is not None

    async def _wait_exit(self) -> None:
        try:
            status = await self.runtime.wait(self.task["ID"])
        except Exception as exc:
            log.warning("task %s: lost its container: %s", self.task["ID"], exc)
            self.events.put_nowait(Exited(255))
            return
        self.exit_code = status.exit_code
        self.events.put_nowait(Exited(status.exit_code, status.oom_killed))


class Worker:
    """Keeps this node's containers in line with its assignments."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        report: Callable[[Obj], None],
        on_pull: PullObserver = _ignore_pull,
        networks: Networks | None = None,
        files: TaskFiles | None = None,
        volumes: TaskVolumes | None = None,
    ) -> None:
        self.runtime = runtime
        self.report = report
        self.on_pull = on_pull
        self.networks = networks
        self.files = files
        self.volumes = volumes
        self.runners: dict[str, TaskRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def adopt_existing(self, assigned: list[Obj]) -> None:
        """After a restart: keep containers of tasks we still hold, remove the rest."""
        wanted = {t["ID"]: t for t in assigned if desired_running(t)}
        for container in await self.runtime.list_containers():
            task = wanted.get(container.id)
            if task is None or container.state not in ("running", "created"):
                with contextlib.suppress(Exception):
                    await self.runtime.delete(container.id)
                if self.networks is not None:
                    with contextlib.suppress(Exception):
                        await self.networks.detach(container.id)
                if self.files is not None:
                    with contextlib.suppress(Exception):
                        await self.files.release(container.id)
                if self.volumes is not None:
                    with contextlib.suppress(Exception):
                        await self.volumes.release_unknown(container.id)
                continue
            runner = self._start_runner(task)
            runner.adopt(container.state == "running")

    def _start_runner(self, task: Obj) -> TaskRunner:
        runner = TaskRunner(
            task, self.runtime, self.report, self.on_pull, self.networks, self.files, self.volumes
        )
        self.runners[task["ID"]] = runner
        self._tasks[task["ID"]] = asyncio.create_task(runner.run())
        return runner

    def assign(self, tasks: list[Obj]) -> None:
        seen = set()
        for task in tasks:
            seen.add(task["ID"])
            runner = self.runners.get(task["ID"])
            if runner is None:
                if not desired_running(task):
                    continue  # never started here, and no longer wanted
                runner = self._start_runner(task)
                runner.events.put_nowait(Assigned())
            elif not desired_running(task):
                runner.shut_down()
            elif task.get("DesiredState") == "running":
                runner.release()
        for task_id in list(self.runners):
            if task_id not in seen:  # the task is gone from the cluster: clean up
                self.runners.pop(task_id).shut_down(gone=True)

    def fence(self, exclusive: Callable[[Obj], bool]) -> None:
        """Cut off from the managers: stop the tasks `exclusive` picks."""
        for runner in self.runners.values():
            if not runner.stopping and exclusive(runner.task):
                log.warning("task %s: no manager session; stopping it", runner.task["ID"])
                runner.shut_down()

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
