"""Operating services: rolling updates, rollbacks and logs, with the stock docker CLI and
clusterctl, on a lab of three hosts that are all managers (so a leader can be killed mid-update)."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api.base import parse_time
from lab.configs import docker_tls_args
from lab.services import kill_service
from lab.spec import LabSpec
from tests.lab.helpers import CLUSTERCTL, clusterctl, lab_in_context

pytestmark = pytest.mark.lab
DOCKER = "/usr/bin/docker"  # Debian's docker.io client, API 1.41
# Ends at once on SIGTERM (sleep as PID 1 would wait out the grace period).
LOOP = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]


@pytest.fixture(scope="module")
def lab(_labs_cleaned_up: None) -> Iterator[LabSpec]:
    with lab_in_context(3, managers=3) as made:
        yield made


def docker(lab: LabSpec, *args: str, host: int = 1, check: bool = True) -> str:
    done = subprocess.run(
        [DOCKER, *docker_tls_args(lab, lab.host(host)), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout + done.stderr


def busybox(lab: LabSpec) -> str:
    return f"{lab.registry_address}/library/busybox:latest"


def create(lab: LabSpec, name: str, *flags: str) -> None:
    docker(
        lab, "service", "create", "--name", name, "--replicas", "6",
        "--update-monitor", "1s", *flags, busybox(lab), *LOOP,
    )  # fmt: skip


def tasks(lab: LabSpec, service: str, host: int = 1) -> list[dict[str, object]]:
    ids = docker(lab, "service", "ps", service, "-q", "--no-trunc", host=host).split()
    return json.loads(docker(lab, "inspect", *ids, host=host)) if ids else []


def running(lab: LabSpec, service: str, host: int = 1) -> list[dict[str, object]]:
    return [
        t
        for t in tasks(lab, service, host)
        if t["DesiredState"] == "running" and t["Status"]["State"] == "running"  # type: ignore[index]
    ]


def update_status(lab: LabSpec, service: str, host: int = 1) -> dict[str, str]:
    out = docker(
        lab, "service", "inspect", service, "--format", "{{json .UpdateStatus}}", host=host
    )
    return json.loads(out) or {}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def env_of(task: dict[str, object]) -> list[str]:
    return task["Spec"]["ContainerSpec"].get("Env") or []  # type: ignore[index]


def test_an_update_goes_in_batches_of_parallelism_paced_by_delay(lab: LabSpec) -> None:
    create(lab, "paced")
    # Not detached: the stock CLI follows the update until UpdateStatus completes.
    out = docker(
        lab, "service", "update", "--update-parallelism", "2", "--update-delay", "2s",
        "--env-add", "VERSION=2", "paced",
    )  # fmt: skip
    assert "Service converged" in out or "verify: Service paced converged" in out, out
    assert update_status(lab, "paced")["State"] == "completed"
    new = [t for t in running(lab, "paced") if "VERSION=2" in env_of(t)]
    assert len(new) == 6
    created = sorted(parse_time(str(t["CreatedAt"])) / 1e9 for t in new)
    gaps = [later - earlier for earlier, later in itertools.pairwise(created)]
    batches = 1 + sum(1 for gap in gaps if gap >= 2.0)
    assert batches == 3, gaps  # 2 + 2 + 2, each batch at least the delay after the last
    docker(lab, "service", "rm", "paced")


def test_start_first_keeps_every_replica_running(lab: LabSpec) -> None:
    create(lab, "overlap")
    docker(
        lab, "service", "update", "--detach", "--update-order", "start-first",
        "--update-parallelism", "2", "--env-add", "VERSION=2", "overlap",
    )  # fmt: skip
    lowest, deadline = 6, time.monotonic() + 120
    while update_status(lab, "overlap").get("State") != "completed":
        lowest = min(lowest, len(running(lab, "overlap")))
        assert time.monotonic() < deadline, "the update did not complete"
    assert lowest >= 6
    assert all("VERSION=2" in env_of(t) for t in running(lab, "overlap"))
    docker(lab, "service", "rm", "overlap")


@pytest.fixture(scope="module")
def crashing_image(lab: LabSpec, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image whose command exits 1, built and pushed with clusterctl."""
    context: Path = tmp_path_factory.mktemp("crash")
    (context / "Dockerfile").write_text(f'FROM {busybox(lab)}\nCMD ["sh", "-c", "exit 1"]\n')
    image = f"{lab.registry_address}/test/crash:1"
    for args in (("image", "build", "-t", image, str(context)), ("image", "push", image)):
        done = clusterctl(*args, timeout=300)
        assert done.returncode == 0, done.stderr + done.stdout
    return image


def test_a_failing_image_pauses_the_update_with_the_reason(
    lab: LabSpec, crashing_image: str
) -> None:
    create(lab, "halting")
    out = docker(
        lab, "service", "update", "--image", crashing_image, "--args", "",
        "--update-failure-action", "pause", "halting", check=False,
    )  # fmt: skip
    status = update_status(lab, "halting")
    assert status["State"] == "paused", status
    assert status["Message"].startswith("update paused due to failure or early termination")
    assert "update paused" in out  # the CLI reports why it stopped following
    docker(lab, "service", "rm", "halting")


def test_failure_action_rollback_ends_on_the_old_image(lab: LabSpec, crashing_image: str) -> None:
    create(lab, "undo")
    docker(
        lab, "service", "update", "--detach", "--image", crashing_image, "--args", "",
        "--update-failure-action", "rollback", "undo",
    )  # fmt: skip
    wait_for(
        lambda: update_status(lab, "undo").get("State") == "rollback_completed",
        f"no rollback: {update_status(lab, 'undo')}",
    )
    wait_for(lambda: len(running(lab, "undo")) == 6, "the old tasks did not all run again")
    images = {t["Spec"]["ContainerSpec"]["Image"] for t in running(lab, "undo")}  # type: ignore[index]
    assert images == {busybox(lab)}
    docker(lab, "service", "rm", "undo")


def test_service_rollback_returns_to_the_previous_spec(lab: LabSpec) -> None:
    create(lab, "back")
    docker(lab, "service", "update", "--env-add", "VERSION=2", "back")
    out = docker(lab, "service", "rollback", "back")
    assert "rollback" in out.lower(), out
    # The CLI stops once the tasks converged; the manager completes the
    # rollback after RollbackConfig's monitor window (default 5 s).
    wait_for(
        lambda: update_status(lab, "back").get("State") == "rollback_completed",
        f"the rollback did not complete: {update_status(lab, 'back')}",
    )
    assert all("VERSION=2" not in env_of(t) for t in running(lab, "back"))
    assert len(running(lab, "back")) == 6
    docker(lab, "service", "rm", "back")


def test_an_update_survives_the_leader_being_killed(lab: LabSpec) -> None:
    create(lab, "steady")
    docker(
        lab, "service", "update", "--detach", "--update-parallelism", "1",
        "--update-delay", "2s", "--env-add", "VERSION=2", "steady",
    )  # fmt: skip
    wait_for(
        lambda: any("VERSION=2" in env_of(t) for t in running(lab, "steady")),
        "the update did not start",
    )
    leader = next(
        h.index
        for h in lab.all_hosts()
        if json.loads(docker(lab, "node", "inspect", "self", host=h.index))[0]["ManagerStatus"].get(
            "Leader"
        )
    )
    kill_service(lab, f"h{leader}/manager")
    asker = 1 if leader != 1 else 2

    def finished() -> bool:
        try:
            return update_status(lab, "steady", asker).get("State") == "completed"
        except AssertionError:  # no leader yet
            return False

    wait_for(finished, "the update did not complete after the failover", 120)
    new = running(lab, "steady", asker)
    assert len(new) == 6 and all("VERSION=2" in env_of(t) for t in new)
    docker(lab, "service", "rm", "steady", host=asker)


def test_force_redeploys_an_unchanged_spec(lab: LabSpec) -> None:
    create(lab, "again")
    before = {str(t["ID"]) for t in running(lab, "again")}
    docker(lab, "service", "update", "--force", "--update-parallelism", "0", "again")
    after = {str(t["ID"]) for t in running(lab, "again")}
    assert len(after) == 6 and not before & after  # every task replaced
    docker(lab, "service", "rm", "again")


TALK = [
    "sh", "-c",
    "trap 'exit 0' TERM; i=0; while true; do echo \"line $i on $(hostname)\"; "
    "echo \"warning $i\" >&2; i=$((i+1)); sleep 0.3; done",
]  # fmt: skip


def follow_lines(
    argv: list[str], wanted: Callable[[list[str]], bool], timeout: float = 60
) -> list[str]:
    """Lines of a following command until `wanted` holds; then it is stopped."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + timeout
        assert process.stdout is not None
        while not wanted(lines):
            assert time.monotonic() < deadline, f"not seen in time: {lines[-20:]}"
            line = process.stdout.readline()
            assert line or process.poll() is None, f"it ended: {lines[-20:]}"
            lines.append(line.rstrip("\n"))
    finally:
        process.kill()
        process.wait(timeout=10)
    return lines


def test_service_logs_follow_every_task_on_every_host(lab: LabSpec) -> None:
    docker(
        lab, "service", "create", "--name", "talker", "--mode", "global",
        busybox(lab), *TALK,
    )  # fmt: skip
    hosts = {h.hostname for h in lab.all_hosts()}

    def from_every_host(lines: list[str]) -> bool:
        # The CLI names each line's task: "talker.<node id>.<task id>@<host>    | line …"
        seen = {line.split("@", 1)[1].split()[0] for line in lines if "| line " in line}
        return seen == hosts

    docker_argv = [DOCKER, *docker_tls_args(lab, lab.host(2)), "service", "logs", "-f", "talker"]
    lines = follow_lines(docker_argv, from_every_host)
    assert any("| warning " in line for line in lines)  # stderr too
    ours = follow_lines([str(CLUSTERCTL), "service", "logs", "--follow", "talker"], from_every_host)
    assert all(" | " in line for line in ours if line), ours[:5]
    tail = docker(lab, "service", "logs", "--tail", "1", "--timestamps", "talker", host=3)
    stamped = [line for line in tail.splitlines() if line]
    assert len(stamped) == len(hosts), stamped  # the last line of each task
    assert all(parse_time(line.split()[0]) > 0 for line in stamped), stamped
    docker(lab, "service", "rm", "talker")
