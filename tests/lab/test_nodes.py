"""Nodes that fail, return, join late, and the certificates they hold
(1 manager + 2 workers)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.security import JoinToken, new_token_secret, parse_join_token, pem_cert_info, utcnow
from lab.configs import agent_service, docker_tls_args, manager_address
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.services import start_service, stop_service
from lab.spec import LabSpec
from manager.ca import new_root_ca
from tests.lab.test_convergence import containers_on
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


def docker(lab: LabSpec, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        [DOCKER, *docker_tls_args(lab, lab.host(1)), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout + done.stderr


def wait_for(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def tasks(lab: LabSpec, service: str) -> list[dict[str, str]]:
    lines = docker(lab, "service", "ps", service, "--no-trunc", "--format", "{{json .}}")
    return [json.loads(line) for line in lines.splitlines() if line.startswith("{")]


def running_nodes(lab: LabSpec, service: str) -> list[str]:
    return sorted(
        t["Node"]
        for t in tasks(lab, service)
        if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")
    )


def node_state(lab: LabSpec, hostname: str) -> str:
    return docker(lab, "node", "inspect", hostname, "--format", "{{.Status.State}}").strip()


def create(lab: LabSpec, name: str, *flags: str) -> None:
    docker(
        lab,
        "service",
        "create",
        "--detach",
        "--stop-grace-period",
        "1s",
        "--name",
        name,
        *flags,
        busybox_reference(lab),
        "sleep",
        "100000",
    )


def set_link(lab: LabSpec, host: int, state: str) -> None:
    port = lab.host(host).switch_port
    subprocess.run(["ip", "-n", lab.switch_netns, "link", "set", port, state], check=True)


def test_a_worker_cut_off_is_replaced_and_cleaned_up_when_it_returns(cluster: LabSpec) -> None:
    create(cluster, "cut", "--replicas", "3")
    h3 = cluster.host(3).hostname
    wait_for(lambda: len(running_nodes(cluster, "cut")) == 3, "3 tasks running")
    assert h3 in running_nodes(cluster, "cut")
    stale = {t["ID"] for t in tasks(cluster, "cut") if t["Node"] == h3}
    set_link(cluster, 3, "down")
    try:
        # 3 missed heartbeats (5 s each) make it down; its task runs elsewhere.
        wait_for(
            lambda: (
                node_state(cluster, h3) == "down"
                and len(running_nodes(cluster, "cut")) == 3
                and h3 not in running_nodes(cluster, "cut")
            ),
            "the cut-off node's task was not replaced",
            timeout=20,
        )
        assert stale & set(asyncio.run(containers_on(cluster, 3)))  # it still runs there
    finally:
        set_link(cluster, 3, "up")
    wait_for(lambda: node_state(cluster, h3) == "ready", "the node did not come back")
    wait_for(
        lambda: not stale & set(asyncio.run(containers_on(cluster, 3, every=True))),
        "the returning node kept its stale container",
    )
    assert len(running_nodes(cluster, "cut")) == 3
    docker(cluster, "service", "rm", "cut")


def test_late_node_gets_the_global_task_and_the_pending_reservation(cluster: LabSpec) -> None:
    h3 = cluster.host(3)
    stop_service(cluster, "h3/agent")
    docker(cluster, "node", "rm", "--force", h3.hostname)
    shutil.rmtree(h3.directory / "agent")  # a new machine: no identity yet
    memory = int(
        docker(
            cluster, "node", "inspect", "self", "--format", "{{.Description.Resources.MemoryBytes}}"
        )
    )
    big = str(int(memory * 0.6))
    try:
        create(cluster, "fill", "--replicas", "2", "--reserve-memory", big)
        wait_for(lambda: len(running_nodes(cluster, "fill")) == 2, "fill runs on both nodes")
        create(cluster, "waiting", "--reserve-memory", big)
        create(cluster, "everywhere", "--mode", "global")
        wait_for(lambda: len(running_nodes(cluster, "everywhere")) == 2, "global on 2 nodes")

        def pending_with_reason() -> bool:
            listed = tasks(cluster, "waiting")
            return bool(listed) and "insufficient resources on 2 nodes" in listed[0]["Error"]

        wait_for(pending_with_reason, "the impossible task is not pending with its reason")
        assert tasks(cluster, "waiting")[0]["CurrentState"].startswith("Pending")
    finally:
        start_service(cluster, "h3/agent")  # joins with the worker token, as a new node
    wait_for(lambda: running_nodes(cluster, "waiting") == [h3.hostname], "pending task placed")
    wait_for(
        lambda: h3.hostname in running_nodes(cluster, "everywhere"),
        "the global service did not reach the new node",
    )
    for service in ("fill", "waiting", "everywhere"):
        docker(cluster, "service", "rm", service)


def test_certificates_roles_and_refusals(cluster: LabSpec) -> None:
    h2 = cluster.host(2)
    certs = h2.directory / "agent" / "certificates"
    url = f"https://{manager_address(cluster.host(1))}"
    curl = ["curl", "-s", "--cacert", str(certs / "ca.pem")]
    worker = [*curl, "--cert", str(certs / "cert.pem"), "--key", str(certs / "key.pem")]
    refused = json.loads(
        subprocess.run([*worker, f"{url}/nodes"], capture_output=True, text=True, check=True).stdout
    )
    assert "is a worker" in refused["message"]
    anonymous = json.loads(
        subprocess.run([*curl, f"{url}/nodes"], capture_output=True, text=True, check=True).stdout
    )
    assert "client certificate" in anonymous["message"]

    assert pem_cert_info((certs / "cert.pem").read_bytes()).role == "worker"
    docker(cluster, "node", "promote", h2.hostname)
    wait_for(
        lambda: pem_cert_info((certs / "cert.pem").read_bytes()).role == "manager",
        "the promoted node's certificate did not become a manager's",
    )
    docker(cluster, "node", "demote", h2.hostname)
    wait_for(
        lambda: pem_cert_info((certs / "cert.pem").read_bytes()).role == "worker",
        "the demoted node's certificate did not become a worker's",
    )


@pytest.mark.parametrize("kind", ["wrong", "other-cluster"])
def test_an_agent_with_a_bad_token_is_refused(cluster: LabSpec, kind: str, tmp_path: Path) -> None:
    real = parse_join_token(docker(cluster, "swarm", "join-token", "-q", "worker").strip())
    token = (
        JoinToken(real.ca_digest, new_token_secret())
        if kind == "wrong"
        else JoinToken(new_root_ca(utcnow()).digest, real.secret)
    )
    argv = agent_service(
        cluster, cluster.host(3), [manager_address(cluster.host(1))], str(token)
    ).argv
    data = argv.index("--data-dir") + 1
    argv[data] = str(tmp_path / "agent")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    expected = "A valid join token is necessary" if kind == "wrong" else "does not match"
    assert expected in done.stderr
    assert not (tmp_path / "agent" / "certificates" / "cert.pem").exists()


def test_agent_metrics_count_tasks_containers_and_pulls(cluster: LabSpec) -> None:
    create(cluster, "counted", "--mode", "global")
    wait_for(lambda: len(running_nodes(cluster, "counted")) == 3, "global service running")
    url = f"http://{cluster.host(2).address}:9323/metrics"

    def sample(name: str) -> float:
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)
        )

    wait_for(
        lambda: sample('swarm_agent_containers{state="running"}') >= 1,
        "the agent does not count its running container",
    )
    assert sample('swarm_agent_tasks{state="running"}') >= 1
    assert sample('swarm_agent_image_pulls_total{outcome="ok"}') >= 1
    assert sample("swarm_agent_image_pull_seconds_count") >= 1
    assert sample("swarm_agent_session_up") == 1
    docker(cluster, "service", "rm", "counted")


def test_drain_pause_constraints_and_max_replicas(cluster: LabSpec) -> None:
    h1, h2, h3 = (cluster.host(i).hostname for i in (1, 2, 3))
    create(cluster, "spread", "--replicas", "3")
    wait_for(lambda: running_nodes(cluster, "spread") == sorted([h1, h2, h3]), "one per node")
    kept = {t["ID"] for t in tasks(cluster, "spread") if t["Node"] == h3}

    docker(cluster, "node", "update", "--availability", "drain", h2)
    wait_for(lambda: h2 not in running_nodes(cluster, "spread"), "drained node keeps a task")
    wait_for(lambda: len(running_nodes(cluster, "spread")) == 3, "the drained task moved")
    wait_for(lambda: not asyncio.run(containers_on(cluster, 2, every=True)), "drained containers")

    docker(cluster, "node", "update", "--availability", "pause", h3)
    on_h3 = Counter(running_nodes(cluster, "spread"))[h3]
    docker(cluster, "service", "scale", "spread=5")
    wait_for(lambda: len(running_nodes(cluster, "spread")) == 5, "scaled to 5")
    placed = Counter(running_nodes(cluster, "spread"))
    assert placed == Counter({h1: 5 - on_h3, h3: on_h3})  # paused h3 keeps its own, takes none
    assert kept <= {t["ID"] for t in tasks(cluster, "spread") if t["Node"] == h3}
    for node in (h2, h3):
        docker(cluster, "node", "update", "--availability", "active", node)
    docker(cluster, "service", "rm", "spread")

    create(cluster, "pinned", "--replicas", "2", "--constraint", f"node.hostname!={h1}")
    create(cluster, "capped", "--replicas", "4", "--replicas-max-per-node", "1")
    wait_for(lambda: len(running_nodes(cluster, "pinned")) == 2, "constrained tasks run")
    assert h1 not in running_nodes(cluster, "pinned")
    wait_for(lambda: len(running_nodes(cluster, "capped")) == 3, "capped tasks run")
    assert sorted(running_nodes(cluster, "capped")) == sorted([h1, h2, h3])
    waiting = [t for t in tasks(cluster, "capped") if t["CurrentState"].startswith("Pending")]
    assert len(waiting) == 1
    assert "max replicas per node limit exceeded on 3 nodes" in waiting[0]["Error"]
    for service in ("pinned", "capped"):
        docker(cluster, "service", "rm", service)
