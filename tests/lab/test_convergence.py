"""Services converge across hosts: managers schedule, agents run containers
through containerd, and replacements follow failures (1 manager, 2 workers)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.configs import docker_tls_args, runtime_config
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.services import kill_service, service_pid
from lab.spec import LabSpec
from runtime.driver import ContainerdRuntime
from tests.lab_fixtures import CREATED_BY, new_lab_name

pytestmark = pytest.mark.lab
DOCKER = "/usr/bin/docker"


@pytest.fixture(scope="module")
def cluster(_labs_cleaned_up: None) -> Iterator[LabSpec]:
    name = new_lab_name()
    try:
        yield lab_up(name, 3, created_by=CREATED_BY, managers=1)
    finally:
        lab_down(name)


def docker(lab: LabSpec, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [DOCKER, *docker_tls_args(lab, lab.host(1)), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def running_by_host(lab: LabSpec, service: str) -> Counter[str]:
    lines = docker(
        lab,
        "service",
        "ps",
        service,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}} {{.CurrentState}}",
    ).splitlines()
    return Counter(line.split()[0] for line in lines if " Running " in f" {line} ")


def wait_for(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


async def containers_on(lab: LabSpec, host: int, every: bool = False) -> list[str]:
    """Running containers on a host (stopped ones too, with every)."""
    async with ContainerdRuntime(runtime_config(lab, lab.host(host))) as runtime:
        return [c.id for c in await runtime.list_containers() if every or c.state == "running"]


def test_replicas_spread_run_and_follow_scaling(cluster: LabSpec) -> None:
    image = busybox_reference(cluster)
    out = docker(
        cluster,
        "service",
        "create",
        "--stop-grace-period",
        "1s",
        "--update-monitor",
        "500ms",
        "--name",
        "web",
        "--replicas",
        "6",
        image,
        "sleep",
        "100000",
    )
    assert "converged" in out  # the CLI's own convergence display, not detached
    hosts = {f"{cluster.name}-h{i}" for i in (1, 2, 3)}
    assert running_by_host(cluster, "web") == Counter({h: 2 for h in hosts})
    docker(cluster, "service", "scale", "web=9")
    assert running_by_host(cluster, "web") == Counter({h: 3 for h in hosts})
    docker(cluster, "service", "scale", "web=3")
    wait_for(lambda: sum(running_by_host(cluster, "web").values()) == 3, "scale down")
    wait_for(
        lambda: (
            sum(len(asyncio.run(containers_on(cluster, h, every=True))) for h in (1, 2, 3)) == 3
        ),
        "containers of removed tasks are gone",
    )
    docker(cluster, "service", "rm", "web")
    wait_for(
        lambda: all(not asyncio.run(containers_on(cluster, h, every=True)) for h in (1, 2, 3)),
        "service rm leaves no container",
    )


def test_a_killed_container_is_replaced(cluster: LabSpec) -> None:
    docker(
        cluster,
        "service",
        "create",
        "--stop-grace-period",
        "1s",
        "--update-monitor",
        "500ms",
        "--name",
        "phoenix",
        "--replicas",
        "2",
        busybox_reference(cluster),
        "sleep",
        "100000",
    )
    tasks = json.loads(
        docker(
            cluster, "service", "ps", "phoenix", "--format", "{{json .}}", "--no-trunc"
        ).splitlines()[0]
    )
    victim = tasks["ID"]
    host = next(h for h in cluster.all_hosts() if h.hostname == tasks["Node"])
    cgroup = f"/sys/fs/cgroup/pids/shoal-{cluster.name}/{host.name}/{victim}/cgroup.procs"
    pid = int(Path(cgroup).read_text().split()[0])
    subprocess.run(["kill", "-9", str(pid)], check=True)
    wait_for(
        lambda: (
            sum(running_by_host(cluster, "phoenix").values()) == 2
            and victim
            not in docker(
                cluster,
                "service",
                "ps",
                "phoenix",
                "-q",
                "--filter",
                "desired-state=running",
                "--no-trunc",
            )
        ),
        "the killed task was not replaced",
    )
    failed = docker(cluster, "service", "ps", "phoenix", "--no-trunc")
    assert "task: non-zero exit (137)" in failed
    docker(cluster, "service", "rm", "phoenix")


def test_a_restarted_agent_adopts_its_containers(cluster: LabSpec) -> None:
    docker(
        cluster,
        "service",
        "create",
        "--stop-grace-period",
        "1s",
        "--update-monitor",
        "500ms",
        "--name",
        "steady",
        "--replicas",
        "3",
        busybox_reference(cluster),
        "sleep",
        "100000",
    )
    steady = set(docker(cluster, "service", "ps", "steady", "-q", "--no-trunc").split())

    def containers() -> dict[int, list[str]]:
        return {h: sorted(set(asyncio.run(containers_on(cluster, h))) & steady) for h in (1, 2, 3)}

    before = containers()
    assert sum(len(c) for c in before.values()) == 3
    old_pid = service_pid(cluster, "h2/agent")
    new_pid = kill_service(cluster, "h2/agent")  # kill -9; the supervisor restarts it
    assert new_pid != old_pid
    time.sleep(3)  # the new agent re-registers, reads its assignments, adopts
    after = containers()
    assert after == before  # nothing restarted, nothing duplicated
    assert sum(running_by_host(cluster, "steady").values()) == 3
    docker(cluster, "service", "rm", "steady")


def test_a_global_service_runs_once_on_every_node(cluster: LabSpec) -> None:
    out = docker(
        cluster,
        "service",
        "create",
        "--stop-grace-period",
        "1s",
        "--update-monitor",
        "500ms",
        "--name",
        "everywhere",
        "--mode",
        "global",
        busybox_reference(cluster),
        "sleep",
        "100000",
    )
    assert "converged" in out
    assert running_by_host(cluster, "everywhere") == Counter(
        {f"{cluster.name}-h{i}": 1 for i in (1, 2, 3)}
    )
    docker(cluster, "service", "rm", "everywhere")


def test_restart_policy_delay_and_max_attempts(cluster: LabSpec) -> None:
    docker(
        cluster, "service", "create", "--detach", "--name", "flaky",
        "--restart-condition", "on-failure", "--restart-max-attempts", "2",
        "--restart-delay", "1s", busybox_reference(cluster), "sh", "-c", "exit 1",
    )  # fmt: skip

    def slot_tasks() -> list[str]:
        return docker(
            cluster, "service", "ps", "flaky", "--format", "{{.CurrentState}}"
        ).splitlines()

    wait_for(lambda: len(slot_tasks()) == 3, "the original task and 2 restarts")
    time.sleep(3)  # well past the delay: no third restart comes
    states = slot_tasks()
    assert len(states) == 3 and all(s.startswith("Failed") for s in states), states
    docker(cluster, "service", "rm", "flaky")


def test_a_replicated_job_completes_at_most_two_at_a_time(cluster: LabSpec) -> None:
    docker(
        cluster, "service", "create", "--detach", "--name", "batch", "--mode", "replicated-job",
        "--replicas", "5", "--max-concurrent", "2", busybox_reference(cluster),
        "sh", "-c", "sleep 1",
    )  # fmt: skip

    def states() -> list[str]:
        out = docker(cluster, "service", "ps", "batch", "--format", "{{.CurrentState}}")
        return [line.split()[0] for line in out.splitlines()]

    most = 0
    deadline = time.monotonic() + 60
    while states().count("Complete") < 5:
        most = max(most, states().count("Running"))
        assert time.monotonic() < deadline, f"the job did not complete: {states()}"
        time.sleep(0.2)
    assert most <= 2
    time.sleep(2)  # complete, and it stays so: no task is restarted or added
    assert states() == ["Complete"] * 5
    docker(cluster, "service", "rm", "batch")
