"""A scale sends the whole spec back as the docker CLI read it: no task may be
taken for out of date (no rolling update), only slots added."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.component.cli_cluster import InProcessCluster, in_process_cluster

CLI_CREATE = {
    "Name": "web",
    "Labels": {},
    "TaskTemplate": {
        "ContainerSpec": {"Image": "busybox:latest", "Init": False, "DNSConfig": {}},
        "Resources": {"Limits": {}, "Reservations": {}},
        "Placement": {},
        "Networks": [{"Target": "front"}],
    },
    "Mode": {"Replicated": {"Replicas": 3}},
    "EndpointSpec": {"Mode": "vip", "Ports": [{"TargetPort": 80, "PublishedPort": 8080}]},
}


def running_ids(cluster: InProcessCluster) -> set[str]:
    tasks = cluster.view(lambda tx: tx.all("task"))
    return {
        t["ID"]
        for t in tasks
        if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    }


def wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_scaling_with_the_spec_read_back_replaces_nothing(tmp_path: Path) -> None:
    with in_process_cluster(tmp_path) as cluster:
        cluster.api("POST", "/v1.41/networks/create", {"Name": "front", "Driver": "overlay"})
        created = cluster.api("POST", "/v1.41/services/create", CLI_CREATE)
        wait(lambda: len(running_ids(cluster)) == 3, "the service did not run")
        before = running_ids(cluster)
        service = cluster.api("GET", f"/v1.41/services/{created['ID']}")
        spec = dict(service["Spec"], Mode={"Replicated": {"Replicas": 5}})
        version = service["Version"]["Index"]
        cluster.api("POST", f"/v1.41/services/{created['ID']}/update?version={version}", spec)
        wait(lambda: len(running_ids(cluster)) == 5, "the service did not scale")
        time.sleep(0.5)
        assert before <= running_ids(cluster)  # the first three still run
        service = cluster.api("GET", f"/v1.41/services/{created['ID']}")
        assert "UpdateStatus" not in service  # no rolling update started
