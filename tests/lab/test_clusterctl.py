"""Every command of clusterctl against a lab of three hosts (one manager, two
workers), with every `--format json` output parsed: contexts, the cluster,
nodes, services (create, ls, ps, inspect, update, scale, rollback, logs, rm),
networks, secrets, configs, volumes, the table of bad input, and finally a
second manager that joins with `cluster join` and leaves with `cluster leave`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.security import new_key_and_csr, utcnow
from lab.configs import manager_address, manager_service, manager_socket
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.spec import LabSpec
from manager.ca import new_root_ca, sign
from tests.lab.helpers import CLUSTERCTL
from tests.lab_fixtures import CREATED_BY, new_lab_name

pytestmark = pytest.mark.lab
# Says hello once, then ends at once on SIGTERM.
HELLO = [
    "sh",
    "-c",
    "echo hello-from-$(hostname); trap 'exit 0' TERM; while true; do sleep 0.2; done",
]


@pytest.fixture(scope="module")
def lab(_labs_cleaned_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSpec]:
    """The lab, and a clusterctl configuration of this module's own."""
    name = new_lab_name()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLUSTERCTL_CONFIG", str(tmp_path_factory.mktemp("clusterctl")))
        patch.delenv("CLUSTERCTL_CONTEXT", raising=False)
        try:
            yield lab_up(name, 3, created_by=CREATED_BY, managers=1)
        finally:
            lab_down(name)


def ctl(
    *args: str, input: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLUSTERCTL, *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
        env=dict(os.environ),
    )


def ok(*args: str, input: str | None = None, timeout: float = 180) -> str:
    done = ctl(*args, input=input, timeout=timeout)
    assert done.returncode == 0, f"clusterctl {' '.join(args)}: {done.stderr}{done.stdout}"
    return done.stdout


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--format", "json"))


def one_line_error(done: subprocess.CompletedProcess[str], expected: str = "") -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def running_tasks(service: str) -> list[dict[str, Any]]:
    return [
        t
        for t in as_json("service", "ps", service)
        if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    ]


def test_a_context_with_copied_certificates_reaches_the_lab(lab: LabSpec) -> None:
    certs = lab.client_certs
    ok(
        "context", "create", "lab", "--manager", manager_address(lab.host(1)),
        "--ca", str(certs / "ca.pem"), "--cert", str(certs / "cert.pem"),
        "--key", str(certs / "key.pem"), "--use",
    )  # fmt: skip
    contexts = as_json("context", "ls")
    assert [(c["name"], c["current"]) for c in contexts] == [("lab", True)]
    assert Path(contexts[0]["certs"]) != certs  # copied into the context's own directory
    assert as_json("context", "inspect", "lab")[0]["manager"] == manager_address(lab.host(1))
    ok(
        "context",
        "create",
        "spare",
        "--manager",
        manager_address(lab.host(1)),
        "--certs",
        str(certs),
    )
    assert len(as_json("node", "ls", "--context", "spare")) == 3
    assert ok("context", "ls", "-q").split() == ["lab", "spare"]
    ok("context", "rm", "spare")


def test_cluster_info_and_join_tokens(lab: LabSpec) -> None:
    info = as_json("cluster", "info")
    assert info["LocalNodeState"] == "active" and info["Managers"] == 1 and info["Nodes"] == 3
    assert f"ClusterID: {info['Cluster']['ID']}" in ok("cluster", "info")
    worker = ok("cluster", "join-token", "-q", "worker").strip()
    assert worker.startswith("SWMTKN-1-")
    assert manager_address(lab.host(1)) in ok("cluster", "join-token", "manager")
    rotated = ok("cluster", "join-token", "--rotate", "-q", "worker").strip()
    assert rotated != worker and rotated == ok("cluster", "join-token", "-q", "worker").strip()


def test_nodes(lab: LabSpec) -> None:
    nodes = as_json("node", "ls")
    hostnames = {lab.host(i).hostname for i in (1, 2, 3)}
    assert {n["Description"]["Hostname"] for n in nodes} == hostnames
    assert sorted(ok("node", "ls", "-q").split()) == sorted(n["ID"] for n in nodes)
    table = ok("node", "ls")
    me = next(line for line in table.splitlines() if " * " in line)
    assert lab.host(1).hostname in me and "Leader" in me
    h3 = next(n for n in nodes if n["Description"]["Hostname"] == lab.host(3).hostname)
    assert as_json("node", "inspect", h3["ID"][:6])[0]["ID"] == h3["ID"]
    assert as_json("node", "inspect", "self")[0]["ManagerStatus"]["Leader"] is True
    assert "Hostname:" in ok("node", "inspect", "--pretty", lab.host(3).hostname)

    ok("node", "update", "--label-add", "zone=east", "--availability", "pause", h3["ID"][:8])
    spec = as_json("node", "inspect", h3["ID"])[0]["Spec"]
    assert spec["Labels"] == {"zone": "east"} and spec["Availability"] == "pause"
    ok("node", "update", "--label-rm", "zone", "--availability", "active", lab.host(3).hostname)
    spec = as_json("node", "inspect", h3["ID"])[0]["Spec"]
    assert spec["Labels"] == {} and spec["Availability"] == "active"
    # The role alone: a worker host without a manager process stays a worker in fact.
    ok("node", "promote", lab.host(3).hostname)
    assert as_json("node", "inspect", h3["ID"])[0]["Spec"]["Role"] == "manager"
    ok("node", "demote", lab.host(3).hostname)
    assert as_json("node", "inspect", h3["ID"])[0]["Spec"]["Role"] == "worker"
    one_line_error(ctl("node", "rm", lab.host(3).hostname), "is not down")


def test_networks_secrets_configs_and_volumes(lab: LabSpec, tmp_path: Path) -> None:
    network_id = ok(
        "network", "create", "-d", "overlay", "--subnet", "10.77.0.0/24", "--attachable", "ctl-net"
    ).strip()
    assert (
        as_json("network", "inspect", network_id[:7])[0]["IPAM"]["Config"][0]["Subnet"]
        == "10.77.0.0/24"
    )
    assert "ctl-net" in {n["Name"] for n in as_json("network", "ls")}
    assert network_id in ok("network", "ls", "-q").split()

    secret_id = ok("secret", "create", "ctl-secret", "-", input="s3cret").strip()
    assert as_json("secret", "inspect", "ctl-secret")[0]["ID"] == secret_id
    assert "Data" not in as_json("secret", "inspect", secret_id[:7])[0]["Spec"]
    assert secret_id in ok("secret", "ls", "-q").split()
    assert [s["ID"] for s in as_json("secret", "ls")] == [secret_id]
    (tmp_path / "app.conf").write_text("colour=blue\n")
    config_id = ok("config", "create", "ctl-config", str(tmp_path / "app.conf")).strip()
    assert as_json("config", "inspect", "ctl-config")[0]["ID"] == config_id
    assert [c["ID"] for c in as_json("config", "ls")] == [config_id]

    assert ok("volume", "create", "-d", "local", "--label", "k=v", "ctl-vol").strip() == "ctl-vol"
    assert as_json("volume", "inspect", "ctl-vol")[0]["Labels"] == {"k": "v"}
    assert "ctl-vol" in {v["Name"] for v in as_json("volume", "ls")}
    ok("volume", "rm", "ctl-vol")
    assert "ctl-vol" not in ok("volume", "ls", "-q").split()
    # network, secret and config stay for the services test, which removes them.


def test_services(lab: LabSpec) -> None:
    image = busybox_reference(lab)
    created = ctl(
        "service", "create", "--name", "ctl-web", "--replicas", "3",
        "--env", "VERSION=1", "--label", "team=ctl", "--network", "ctl-net",
        "--secret", "ctl-secret", "--config", "ctl-config", "--publish", "8099:80",
        "--constraint", "node.role==worker", "--update-parallelism", "1",
        "--update-delay", "1s", "--update-monitor", "1s", "--restart-condition", "any",
        "--reserve-memory", "8M", "--limit-cpu", "0.5", image, *HELLO,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr + created.stdout
    assert "converged" in created.stdout + created.stderr  # waited, without a terminal: plain lines
    services = as_json("service", "ls")
    web = next(s for s in services if s["Spec"]["Name"] == "ctl-web")
    assert web["ID"] in ok("service", "ls", "-q").split()
    assert "ctl-web" in ok("service", "ls")
    assert len(running_tasks("ctl-web")) == 3
    assert sorted(ok("service", "ps", "-q", "ctl-web").split()) == sorted(
        t["ID"] for t in as_json("service", "ps", "ctl-web")
    )
    spec = as_json("service", "inspect", web["ID"][:7])[0]["Spec"]
    assert spec["Labels"] == {"team": "ctl"}
    assert "VERSION=1" in spec["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "ctl-web" in ok("service", "inspect", "--pretty", "ctl-web")

    ok("service", "update", "--env-add", "VERSION=2", "ctl-web")
    assert all("VERSION=2" in t["Spec"]["ContainerSpec"]["Env"] for t in running_tasks("ctl-web"))
    ok("service", "scale", "ctl-web=4")
    assert (
        as_json("service", "inspect", "ctl-web")[0]["Spec"]["Mode"]["Replicated"]["Replicas"] == 4
    )
    wait_for(lambda: len(running_tasks("ctl-web")) == 4, "ctl-web did not scale to 4")
    ok("service", "rollback", "ctl-web")  # undoes the scale
    assert (
        as_json("service", "inspect", "ctl-web")[0]["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    )
    wait_for(lambda: len(running_tasks("ctl-web")) == 3, "ctl-web did not roll back to 3")

    wait_for(lambda: "hello-from-" in ok("service", "logs", "--tail", "20", "ctl-web"), "no logs")
    stamped = ok("service", "logs", "--timestamps", "--tail", "1", "ctl-web")
    assert stamped[:4].isdigit()  # each line starts with its time

    ok("service", "create", "--detach", "--mode", "global", "--name", "ctl-global", image, *HELLO)
    wait_for(lambda: len(running_tasks("ctl-global")) == 3, "a global task per node")
    node_tasks = as_json("node", "ps", lab.host(2).hostname)
    assert any(
        t["ServiceID"] == as_json("service", "inspect", "ctl-global")[0]["ID"] for t in node_tasks
    )
    assert ok("node", "ps", "-q", lab.host(2).hostname).split()

    assert ok("service", "rm", "ctl-web", "ctl-global").split() == ["ctl-web", "ctl-global"]
    assert not {"ctl-web", "ctl-global"} & {s["Spec"]["Name"] for s in as_json("service", "ls")}
    wait_for(lambda: ctl("network", "rm", "ctl-net").returncode == 0, "ctl-net stayed in use")
    ok("secret", "rm", "ctl-secret")
    ok("config", "rm", "ctl-config")


def expired_certificate(lab: LabSpec, directory: Path) -> Path:
    """The lab's CA to trust, and a client certificate that expired an hour ago
    (from another CA: the lab's CA key stays inside the managers)."""
    directory.mkdir()
    past = utcnow() - timedelta(days=2)
    other = new_root_ca(past)
    key, csr = new_key_and_csr()
    cert = sign(
        other, csr, node_id="x" * 25, role="manager", cluster_id="x", lifetime=timedelta(hours=47),
        now=past,
    )  # fmt: skip
    (directory / "ca.pem").write_bytes((lab.client_certs / "ca.pem").read_bytes())
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    return directory


def ambiguous_secret_prefix() -> str:
    """Secrets until two IDs share a first character (at most 37 by pigeonhole)."""
    seen: dict[str, str] = {}
    for index in range(37):
        secret_id = ok("secret", "create", f"ctl-amb-{index}", "-", input="x").strip()
        if secret_id[0] in seen:
            return secret_id[0]
        seen[secret_id[0]] = secret_id
    raise AssertionError("37 IDs in 36 characters")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["service", "inspect", "ctl-nosuch"], "ctl-nosuch"),
        (["service", "create", "--publish", "80:80:80", "IMAGE"], "80:80:80"),
        (["service", "create", "--replicas", "-1", "IMAGE"], ""),
        (["service", "create", "--limit-memory", "12XB", "IMAGE"], "12XB"),
        (["service", "create", "--constraint", "node.role=manager", "IMAGE"], "node.role=manager"),
        (["node", "inspect", "ctl-nosuch"], "node ctl-nosuch not found"),
        (["node", "update", "--availability", "sleepy", "self"], "'sleepy'"),
        (["network", "rm", "ctl-nosuch"], "not found"),
        (["secret", "inspect", "ctl-nosuch"], "not found"),
        (["volume", "inspect", "ctl-nosuch"], "no such volume"),
        (["node", "ls", "--manager", "127.0.0.1:1"], "cannot reach the manager"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(lab: LabSpec, args: list[str], expected: str) -> None:
    image = busybox_reference(lab)
    args = [image if a == "IMAGE" else a for a in args]
    one_line_error(ctl(*args, timeout=240), expected)


def test_a_missing_image_shows_its_error_in_service_ps(lab: LabSpec) -> None:
    """As with docker: the service is created, its tasks are rejected with the
    registry's reason (and retried), which `service ps` shows."""
    missing = f"{lab.registry_address}/ctl/missing:1"
    ok("service", "create", "--detach", "--name", "ctl-ghost", missing)

    def rejected() -> bool:
        tasks = as_json("service", "ps", "ctl-ghost")
        return any("not found" in (t["Status"].get("Err") or "") for t in tasks)

    wait_for(rejected, "the missing image's error did not show")
    ok("service", "rm", "ctl-ghost")


def test_an_ambiguous_prefix_and_an_expired_certificate(lab: LabSpec, tmp_path: Path) -> None:
    prefix = ambiguous_secret_prefix()
    one_line_error(ctl("secret", "inspect", prefix), "is ambiguous")
    for secret_id in ok("secret", "ls", "-q").split():
        ok("secret", "rm", secret_id)
    certs = expired_certificate(lab, tmp_path / "expired")
    ok(
        "context",
        "create",
        "expired",
        "--manager",
        manager_address(lab.host(1)),
        "--certs",
        str(certs),
    )
    one_line_error(ctl("node", "ls", "--context", "expired"), "expired at")
    ok("context", "rm", "expired")


def test_a_second_manager_joins_and_leaves(lab: LabSpec) -> None:
    """A manager started alone on h2 (next to its agent) joins through its unix
    socket with `cluster join`, and leaves with `cluster leave --force`."""
    socket = manager_socket(lab.host(2))
    local = ["--socket", str(socket)]
    lone = subprocess.Popen(
        manager_service(lab, lab.host(2), None).argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: ctl("cluster", "info", "--manager", f"unix://{socket}").returncode == 0,
            "the lone manager did not start",
            30,
        )
        assert "Swarm: inactive" in ok("cluster", "info", "--manager", f"unix://{socket}")
        token = ok("cluster", "join-token", "-q", "manager").strip()
        joined = ok("cluster", "join", "--token", token, manager_address(lab.host(1)), *local)
        assert "joined a swarm as a manager" in joined

        def reachable() -> int:
            return sum(
                1
                for n in as_json("node", "ls")
                if (n.get("ManagerStatus") or {}).get("Reachability") == "reachable"
                and not n["ManagerStatus"].get("Leader")
            )

        wait_for(lambda: reachable() == 1, "the joined manager is not reachable", 60)
        theirs = json.loads(
            ok("cluster", "info", "--format", "json", "--manager", f"unix://{socket}")
        )
        assert theirs["Cluster"]["ID"] == as_json("cluster", "info")["Cluster"]["ID"]
        one_line_error(
            ctl("cluster", "join", "--token", token, manager_address(lab.host(1)), *local),
            "already part of a swarm",
        )

        one_line_error(ctl("cluster", "leave", *local), "--force")
        assert "left the swarm" in ok("cluster", "leave", "--force", *local)
        wait_for(lambda: reachable() == 0, "the manager that left is still a manager", 60)
        wait_for(
            lambda: (
                "Swarm: inactive" in ctl("cluster", "info", "--manager", f"unix://{socket}").stdout
            ),
            "the manager that left is not inactive",
            60,
        )
    finally:
        lone.terminate()
        lone.wait(30)
