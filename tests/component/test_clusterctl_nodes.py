"""`clusterctl node ...` against a real manager API in this process (three
simulated nodes: manager-1, worker-1, worker-2)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.component.cli_cluster import CLUSTERCTL, InProcessCluster

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clusterctl_config")]
MANAGER_ID = "m" * 25
WORKER_1, WORKER_2 = "w" * 24 + "1", "w" * 24 + "2"


def ok(cluster: InProcessCluster, *args: str) -> str:
    done = cluster.clusterctl(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def node(cluster: InProcessCluster, node_id: str) -> dict[str, object]:
    found = cluster.view(lambda tx: tx.get("node", node_id))
    assert found is not None
    return found


def test_node_ls_as_table_ids_and_json(cluster: InProcessCluster) -> None:
    listed = json.loads(ok(cluster, "node", "ls", "--format", "json"))
    assert sorted(n["ID"] for n in listed) == [MANAGER_ID, WORKER_1, WORKER_2]
    assert ok(cluster, "node", "ls", "-q").split() == [MANAGER_ID, WORKER_1, WORKER_2]
    table = ok(cluster, "node", "ls").splitlines()
    assert table[0].split() == [
        "ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER", "STATUS", "ENGINE", "VERSION",
    ]  # fmt: skip
    # docker's `*` on the node of the manager we talk to; IDs cut to 12.
    assert table[1].startswith("m" * 12 + " *") and "Leader" in table[1]
    assert [line.split()[0] for line in table[2:]] == ["w" * 12] * 2
    hostnames = {line.split()[1] for line in table[2:]}
    assert hostnames == {"worker-1", "worker-2"}
    columns = {
        line.index(h)
        for line, h in zip(table[1:], ["manager-1", "worker-1", "worker-2"], strict=True)
    }
    assert columns == {table[0].index("HOSTNAME")}  # aligned
    managers = json.loads(ok(cluster, "node", "ls", "--filter", "role=manager", "--format", "json"))
    assert [n["ID"] for n in managers] == [MANAGER_ID]


def test_node_inspect_by_self_name_and_prefix(cluster: InProcessCluster) -> None:
    shown = json.loads(
        ok(cluster, "node", "inspect", "self", "worker-1", "wwwwwwwwwwwwwwwwwwwwwwww2")
    )
    assert [n["ID"] for n in shown] == [MANAGER_ID, WORKER_1, WORKER_2]
    by_prefix = json.loads(ok(cluster, "node", "inspect", "mmmm", "--format", "json"))
    assert by_prefix[0]["Description"]["Hostname"] == "manager-1"
    pretty = ok(cluster, "node", "inspect", "--pretty", "self")
    assert "Hostname:" in pretty and "manager-1" in pretty and "Leader:" in pretty
    one_line_error(cluster.clusterctl("node", "inspect", "www"), "is ambiguous (2 matches found)")
    one_line_error(cluster.clusterctl("node", "inspect", "nosuch"), "node nosuch not found")


def test_node_update_availability_labels_and_role(cluster: InProcessCluster) -> None:
    out = ok(
        cluster, "node", "update", "--availability", "drain",
        "--label-add", "zone=a", "--label-add", "ssd", "worker-1",
    )  # fmt: skip
    assert out.strip() == "worker-1"
    spec = node(cluster, WORKER_1)["Spec"]
    assert spec["Availability"] == "drain"  # type: ignore[index]
    assert spec["Labels"] == {"zone": "a", "ssd": ""}  # type: ignore[index]
    ok(
        cluster,
        "node",
        "update",
        "--label-rm",
        "ssd",
        "--availability",
        "active",
        "wwwwwwwwwwwwwwwwwwwwwwww1",
    )
    assert node(cluster, WORKER_1)["Spec"]["Labels"] == {"zone": "a"}  # type: ignore[index]
    one_line_error(
        cluster.clusterctl("node", "update", "--availability", "sleepy", "worker-1"),
        "'sleepy' is not one of 'active', 'pause', 'drain'",
    )
    one_line_error(
        cluster.clusterctl("node", "update", "--label-rm", "nope", "worker-1"),
        "key nope doesn't exist",
    )
    one_line_error(cluster.clusterctl("node", "update", "--role", "boss", "worker-1"), "'boss'")
    assert "promoted to a manager" in ok(cluster, "node", "promote", "worker-2")
    assert node(cluster, WORKER_2)["Spec"]["Role"] == "manager"  # type: ignore[index]
    assert "already a manager" in ok(cluster, "node", "promote", "worker-2")
    assert "demoted" in ok(cluster, "node", "demote", "worker-2")
    assert node(cluster, WORKER_2)["Spec"]["Role"] == "worker"  # type: ignore[index]
    ok(cluster, "node", "update", "--role", "manager", "worker-2")
    ok(cluster, "node", "update", "--role", "worker", "worker-2")
    assert node(cluster, WORKER_2)["Spec"]["Role"] == "worker"  # type: ignore[index]


def test_node_ps_lists_the_tasks_of_a_node(cluster: InProcessCluster) -> None:
    cluster.api(
        "POST",
        "/v1.41/services/create",
        {
            "Name": "pinned",
            "Mode": {"Replicated": {"Replicas": 2}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "busybox:latest"},
                "Placement": {"Constraints": ["node.hostname==worker-2"]},
            },
        },
    )
    deadline = time.monotonic() + 20
    while True:
        tasks = json.loads(ok(cluster, "node", "ps", "worker-2", "--format", "json"))
        if len(tasks) == 2:
            break
        assert time.monotonic() < deadline, "the service's tasks did not reach worker-2"
        time.sleep(0.3)
    assert {t["NodeID"] for t in tasks} == {WORKER_2}
    assert sorted(ok(cluster, "node", "ps", "-q", "worker-2").split()) == sorted(
        t["ID"] for t in tasks
    )
    table = ok(cluster, "node", "ps", "worker-2").splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "IMAGE"]
    assert sorted(line.split()[1] for line in table[1:]) == ["pinned.1", "pinned.2"]
    assert all("worker-2" in line and len(line.split()[0]) == 12 for line in table[1:])
    assert json.loads(ok(cluster, "node", "ps", "--format", "json")) == []  # self: the manager
    one_line_error(cluster.clusterctl("node", "ps", "nosuch"), "node nosuch not found")


def test_node_rm_needs_down_or_force(cluster: InProcessCluster) -> None:
    one_line_error(cluster.clusterctl("node", "rm", "worker-1"), "is not down")
    assert ok(cluster, "node", "rm", "--force", "worker-1").strip() == "worker-1"
    assert cluster.view(lambda tx: tx.get("node", WORKER_1)) is None
    one_line_error(cluster.clusterctl("node", "rm", "worker-1"), "not found")


def test_an_unreachable_manager_is_one_line() -> None:
    done = subprocess.run(
        [CLUSTERCTL, "node", "ls", "--manager", "unix:///nonexistent.sock"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    one_line_error(done, "cannot reach the manager at unix:///nonexistent.sock")
    debug = subprocess.run(
        [CLUSTERCTL, "--debug", "node", "ls", "--manager", "unix:///nonexistent.sock"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # details on request
    assert debug.stderr.strip().splitlines()[-1].startswith("error: cannot reach the manager")


def test_a_missing_argument_is_one_line(cluster: InProcessCluster) -> None:
    one_line_error(cluster.clusterctl("node", "inspect"), "Missing argument 'NODES...'")


def test_node_names_complete_in_the_shell(cluster: InProcessCluster) -> None:
    words = f"clusterctl node inspect --manager {cluster.manager} man"
    done = subprocess.run(
        [CLUSTERCTL],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={
            **os.environ,
            "_CLUSTERCTL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": "5",
        },
    )
    assert done.stdout.split() == ["plain,manager-1"], done.stderr
