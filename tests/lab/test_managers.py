"""Three managers in a lab, driven by the stock docker CLI and plain HTTP."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from lab.configs import docker_tls_args, manager_address, manager_service, manager_socket
from lab.lifecycle import lab_down, lab_up
from lab.managers import lab_tls
from lab.services import kill_service, start_service, stop_service
from lab.spec import LabSpec
from tests.lab_fixtures import CREATED_BY, LabFactory, new_lab_name

pytestmark = pytest.mark.lab
DOCKER = "/usr/bin/docker"  # Debian's docker.io client, API 1.41


@pytest.fixture(scope="module")
def managers3(_labs_cleaned_up: None) -> Iterator[LabSpec]:
    name = new_lab_name()
    try:
        yield lab_up(name, 3, created_by=CREATED_BY, managers=3)
    finally:
        lab_down(name)


def docker(
    lab: LabSpec, host: int, *args: str, stdin: str | None = None, local: bool = False
) -> subprocess.CompletedProcess[str]:
    """The docker CLI on a host's manager: over mutual TLS with the lab's admin
    certificate, or (local) through the manager's unix socket."""
    where = (
        ["-H", f"unix://{manager_socket(lab.host(host))}"]
        if local
        else docker_tls_args(lab, lab.host(host))
    )
    return subprocess.run(
        [DOCKER, *where, *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


async def api(lab: LabSpec, host: int, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    url = f"https://{manager_address(lab.host(host))}{path}"
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(method, url, ssl=lab_tls(lab), **kw) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


def metrics_text(lab: LabSpec, host: int) -> str:
    url = f"https://{manager_address(lab.host(host))}/metrics"
    with urllib.request.urlopen(url, timeout=10, context=lab_tls(lab)) as reply:
        return str(reply.read().decode())


def leader_host(lab: LabSpec) -> int:
    nodes = json.loads(
        ok(
            docker(
                lab,
                1,
                "node",
                "inspect",
                *[line.split()[0] for line in ok(docker(lab, 1, "node", "ls", "-q")).split()],
            )
        )
    )
    for node in nodes:
        if node["ManagerStatus"].get("Leader"):  # the CLI omits false
            return next(
                h.index
                for h in lab.all_hosts()
                if node["ManagerStatus"]["Addr"] == manager_address(h)
            )
    raise AssertionError("no leader")


def test_docker_node_ls_lists_three_managers_with_the_leader(managers3: LabSpec) -> None:
    for host in (1, 2, 3):
        lines = ok(docker(managers3, host, "node", "ls")).strip().splitlines()[1:]
        assert len(lines) == 3
        assert sum("Leader" in line for line in lines) == 1
        assert sum("Reachable" in line for line in lines) == 2
        assert sum(" * " in line for line in lines) == 1  # this manager marks itself
        assert {f"{managers3.name}-h{i}" for i in (1, 2, 3)} <= set(" ".join(lines).split())


def test_docker_service_network_and_secret_commands(managers3: LabSpec) -> None:
    name = f"web{secrets.token_hex(2)}"
    service_id = ok(
        docker(
            managers3,
            2,
            "service",
            "create",
            "--detach",
            "--name",
            name,
            "--replicas",
            "3",
            "busybox:latest",
            "sleep",
            "1000",
        )
    ).strip()
    assert len(service_id) == 25
    assert name in ok(docker(managers3, 3, "service", "ls"))
    spec = json.loads(ok(docker(managers3, 1, "service", "inspect", name)))[0]["Spec"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 3
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "1000"]
    duplicate = docker(managers3, 1, "service", "create", "--detach", "--name", name, "busybox")
    assert duplicate.returncode != 0
    assert f"name conflicts with an existing object: service {name} already exists" in (
        duplicate.stderr
    )
    unknown = docker(managers3, 1, "service", "inspect", "nosuchservice")
    assert unknown.returncode != 0 and "no such service: nosuchservice" in unknown.stderr
    invalid = docker(
        managers3,
        1,
        "service",
        "create",
        "--detach",
        "--constraint",
        "node.role=manager",
        "busybox",
    )
    assert invalid.returncode != 0 and "constraint expected one operator" in invalid.stderr
    ok(docker(managers3, 1, "service", "rm", name))
    assert name not in ok(docker(managers3, 2, "service", "ls"))

    net = f"net{secrets.token_hex(2)}"
    ok(docker(managers3, 3, "network", "create", "-d", "overlay", net))
    assert net in ok(docker(managers3, 1, "network", "ls"))
    again = docker(managers3, 1, "network", "create", "-d", "overlay", net)
    assert again.returncode != 0 and f"network with name {net} already exists" in again.stderr
    ok(docker(managers3, 2, "network", "rm", net))

    secret = f"sec{secrets.token_hex(2)}"
    ok(docker(managers3, 1, "secret", "create", secret, "-", stdin="s3cret"))
    listed = ok(docker(managers3, 2, "secret", "ls"))
    assert secret in listed and "s3cret" not in listed
    ok(docker(managers3, 3, "secret", "rm", secret))
    assert secret not in ok(docker(managers3, 1, "secret", "ls"))


async def test_concurrent_updates_with_one_version_exactly_one_wins(managers3: LabSpec) -> None:
    name = f"cu{secrets.token_hex(2)}"
    ok(docker(managers3, 1, "service", "create", "--detach", "--name", name, "busybox"))
    _, service = await api(managers3, 1, "GET", f"/services/{name}")
    version = service["Version"]["Index"]

    async def update(host: int, replicas: int) -> int:
        spec = dict(service["Spec"], Mode={"Replicated": {"Replicas": replicas}})
        status, _ = await api(
            managers3, host, "POST", f"/services/{name}/update?version={version}", json=spec
        )
        return status

    statuses = await asyncio.gather(*(update(1 + i % 3, i + 2) for i in range(6)))
    assert sorted(statuses) == [200] + [500] * 5
    ok(docker(managers3, 1, "service", "rm", name))


async def test_kill_9_of_the_leader_loses_no_acknowledged_write(managers3: LabSpec) -> None:
    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def writer(host: int) -> None:
        n = 0
        while not stop.is_set():
            name = f"w{host}-{n}-{secrets.token_hex(2)}"
            try:
                status, _ = await api(
                    managers3, host, "POST", "/secrets/create", json={"Name": name, "Data": "eA=="}
                )
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if status == 201:
                acknowledged.append(name)
                n += 1
            else:
                await asyncio.sleep(0.05)

    writers = [asyncio.create_task(writer(h)) for h in (1, 2, 3)]
    await asyncio.sleep(1.0)
    before = len(acknowledged)
    leader = leader_host(managers3)
    await asyncio.to_thread(kill_service, managers3, f"h{leader}/manager")
    deadline = time.monotonic() + 30
    while len(acknowledged) < before + 50:  # the cluster keeps taking writes
        assert time.monotonic() < deadline, "no writes were acknowledged after the kill"
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*writers)
    for host in (1, 2, 3):
        deadline = time.monotonic() + 30
        missing = acknowledged
        while missing and time.monotonic() < deadline:
            try:  # the killed manager may still be restarting and catching up
                status, listed = await api(managers3, host, "GET", "/secrets")
            except (aiohttp.ClientError, TimeoutError):
                status, listed = 0, []
            if status == 200:
                names = {s["Spec"]["Name"] for s in listed}
                missing = [n for n in acknowledged if n not in names]
            await asyncio.sleep(0.2)
        assert missing == [], f"manager h{host} lacks {len(missing)} acknowledged writes"


async def test_without_quorum_writes_fail_fast_and_reads_answer(managers3: LabSpec) -> None:
    survivor = 1
    stopped = [h for h in (1, 2, 3) if h != survivor]
    for host in stopped:
        await asyncio.to_thread(stop_service, managers3, f"h{host}/manager")
    try:
        await asyncio.sleep(3)  # long enough for the survivor to notice
        started = time.monotonic()
        status, body = await api(
            managers3,
            survivor,
            "POST",
            "/secrets/create",
            json={"Name": f"nq{secrets.token_hex(2)}", "Data": "eA=="},
        )
        elapsed = time.monotonic() - started
        assert status == 503 and "no leader" in body["message"]
        assert elapsed < 3.0, f"the write hung for {elapsed:.1f}s before failing"
        status, _ = await api(managers3, survivor, "GET", "/services")
        assert status == 200
    finally:
        for host in stopped:
            await asyncio.to_thread(start_service, managers3, f"h{host}/manager")
    deadline = time.monotonic() + 30
    while True:
        status, _ = await api(
            managers3,
            survivor,
            "POST",
            "/secrets/create",
            json={"Name": f"back{secrets.token_hex(2)}", "Data": "eA=="},
        )
        if status == 201:
            break
        assert time.monotonic() < deadline, "writes did not come back with the quorum"
        await asyncio.sleep(0.3)


async def test_restarting_every_manager_keeps_every_object_and_version(
    managers3: LabSpec,
) -> None:
    name = f"keep{secrets.token_hex(2)}"
    ok(docker(managers3, 1, "service", "create", "--detach", "--name", name, "busybox"))
    ok(docker(managers3, 2, "network", "create", "-d", "overlay", f"n{name}"))
    _, before_services = await api(managers3, 1, "GET", "/services")
    _, before_networks = await api(managers3, 1, "GET", "/networks")
    for host in (1, 2, 3):
        await asyncio.to_thread(stop_service, managers3, f"h{host}/manager")
    for host in (1, 2, 3):
        await asyncio.to_thread(start_service, managers3, f"h{host}/manager")
    for host in (1, 2, 3):
        deadline = time.monotonic() + 30
        while True:
            try:
                status, after = await api(managers3, host, "GET", "/services")
            except (aiohttp.ClientError, TimeoutError):
                status, after = 0, None
            if status == 200 and after == before_services:
                break
            assert time.monotonic() < deadline, f"h{host} did not come back with the services"
            await asyncio.sleep(0.3)
        _, networks = await api(managers3, host, "GET", "/networks")
        assert networks == before_networks


def test_force_new_cluster_on_the_survivor_keeps_the_data_and_takes_new_managers(
    lab_factory: LabFactory,
) -> None:
    lab = lab_factory(3, managers=3)
    ok(docker(lab, 1, "service", "create", "--detach", "--name", "survivor", "busybox"))
    for i in range(5):
        ok(docker(lab, 2, "secret", "create", f"kept{i}", "-", stdin="x"))
    token = ok(docker(lab, 1, "swarm", "join-token", "-q", "manager")).strip()
    for host in (2, 3, 1):  # peers lost for good, then the survivor stops too
        stop_service(lab, f"h{host}/manager")
    h1 = lab.host(1)
    recovering = subprocess.Popen(
        [*manager_service(lab, h1, None).argv, "--force-new-cluster"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while docker(lab, 1, "secret", "create", "after", "-", stdin="y").returncode != 0:
            assert time.monotonic() < deadline, "writes did not come back after recovery"
            time.sleep(0.3)
        listed = ok(docker(lab, 1, "secret", "ls"))
        assert all(f"kept{i}" in listed for i in range(5))
        assert "survivor" in ok(docker(lab, 1, "service", "ls"))
        listed = ok(docker(lab, 1, "node", "ls"))  # agents' worker nodes may be listed too
        assert listed.count("Leader") == 1 and listed.count("Reachable") == 0

        # A new manager joins the recovered cluster and gets everything.
        h2 = lab.host(2)
        shutil.rmtree(h2.directory / "manager")
        joining = subprocess.Popen(
            manager_service(lab, h2, (manager_address(h1), token)).argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                done = docker(lab, 2, "secret", "ls")
                nodes = docker(lab, 2, "node", "ls").stdout.strip().splitlines()[1:]
                managers = [n for n in nodes if "Leader" in n or "Reachable" in n]
                if "after" in done.stdout and "kept4" in done.stdout and len(managers) == 2:
                    break
                assert time.monotonic() < deadline, "the new manager did not join with the store"
                time.sleep(0.3)
            assert sum("Leader" in n for n in nodes) == 1
        finally:
            joining.terminate()
            joining.wait(30)
    finally:
        recovering.terminate()
        recovering.wait(30)


def test_demoting_managers_removes_them_from_raft_but_never_the_last(
    lab_factory: LabFactory,
) -> None:
    lab = lab_factory(3, managers=3)
    hostname = {h: f"{lab.name}-h{h}" for h in (1, 2, 3)}
    node_ids = {
        line.split()[1]: line.split()[0]
        for line in ok(
            docker(lab, 1, "node", "ls", "--format", "{{.ID}} {{.Hostname}}")
        ).splitlines()
    }
    leader = leader_host(lab)
    demoted = next(h for h in (1, 2, 3) if h != leader)
    asker = next(h for h in (1, 2, 3) if h not in (leader, demoted))  # a follower: forwarded
    ok(docker(lab, asker, "node", "demote", node_ids[hostname[demoted]]))
    listed = ok(docker(lab, leader, "node", "ls"))
    line = next(x for x in listed.splitlines() if hostname[demoted] in x)
    assert "Leader" not in line and "Reachable" not in line
    assert listed.count("Leader") + listed.count("Reachable") == 2

    def raft_peers() -> float:
        metrics = metrics_text(lab, leader)
        value = next(x for x in metrics.splitlines() if x.startswith("swarm_raft_peers "))
        return float(value.split()[1])

    deadline = time.monotonic() + 20
    while raft_peers() != 1.0:
        assert time.monotonic() < deadline, "the demoted manager is still a Raft member"
        time.sleep(0.2)
    stop_service(lab, f"h{demoted}/manager")
    ok(docker(lab, asker, "secret", "create", "after-demote", "-", stdin="x"))

    ok(docker(lab, leader, "node", "demote", node_ids[hostname[asker]]))
    last = docker(lab, leader, "node", "demote", node_ids[hostname[leader]])
    assert last.returncode != 0 and "demote the last manager" in last.stderr


def test_docker_swarm_join_and_leave_on_a_manager(lab_factory: LabFactory) -> None:
    lab = lab_factory(2, managers=1)
    h2 = lab.host(2)
    token = ok(docker(lab, 1, "swarm", "join-token", "-q", "manager")).strip()
    lone = subprocess.Popen(
        manager_service(lab, h2, None).argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while docker(lab, 2, "info", local=True).returncode != 0:
            assert time.monotonic() < deadline, "the second manager did not start"
            time.sleep(0.2)
        # Outside a cluster a manager has no certificate, so no TCP port: its
        # own host drives it through the unix socket.
        assert docker(lab, 2, "info").returncode != 0
        joined = docker(
            lab, 2, "swarm", "join", "--token", token, manager_address(lab.host(1)), local=True
        )
        assert joined.returncode == 0 and "joined a swarm as a manager" in joined.stdout
        deadline = time.monotonic() + 30
        while docker(lab, 1, "node", "ls").stdout.count("Reachable") != 1:
            assert time.monotonic() < deadline, "the joined manager does not show as reachable"
            time.sleep(0.3)
        ok(docker(lab, 1, "secret", "create", "shared", "-", stdin="x"))
        while "shared" not in docker(lab, 2, "secret", "ls").stdout:
            assert time.monotonic() < deadline, "the joined manager does not replicate"
            time.sleep(0.3)
        again = docker(lab, 2, "swarm", "join", "--token", token, manager_address(lab.host(1)))
        assert again.returncode != 0 and "already part of a swarm" in again.stderr

        refused = docker(lab, 2, "swarm", "leave")
        assert refused.returncode != 0 and "--force" in refused.stderr
        ok(docker(lab, 2, "swarm", "leave", "--force"))
        # (h2 stays listed as a worker: its agent is a node of its own)
        while docker(lab, 1, "node", "ls").stdout.count("Reachable") != 0:
            assert time.monotonic() < deadline, "the manager that left is still a manager"
            time.sleep(0.3)
        ok(docker(lab, 1, "secret", "create", "after-leave", "-", stdin="x"))  # quorum of one
        while "inactive" not in docker(lab, 2, "info", local=True).stdout:
            assert time.monotonic() < deadline, "the manager that left is not inactive"
            time.sleep(0.3)
    finally:
        lone.terminate()
        lone.wait(30)


def test_metrics_and_the_local_unix_socket(managers3: LabSpec) -> None:
    leader = leader_host(managers3)
    ok(docker(managers3, leader, "service", "create", "--detach", "--name", "metered", "busybox"))
    for host in (1, 2, 3):
        text = metrics_text(managers3, host)
        values = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
        assert values["swarm_manager_leader"] == (1.0 if host == leader else 0.0)
        assert values['swarm_manager_nodes{state="ready"}'] == 3.0
        assert 'swarm_manager_tasks_total{state="running"}' in values
        assert values['swarm_store_objects{table="service"}'] >= 1.0
        assert values["swarm_raft_term"] >= 1.0 and values["swarm_raft_commit_index"] > 0
        assert values["swarm_raft_peers"] == 2.0
        if host == leader:
            assert values['swarm_store_write_tx_latency_seconds_count{applied="true"}'] >= 1.0
    socket_path = managers3.host(1).directory / "manager" / "manager.sock"
    assert oct(socket_path.stat().st_mode & 0o777) == "0o660"
    pong = subprocess.run(
        [DOCKER, "-H", f"unix://{socket_path}", "node", "ls"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert pong.returncode == 0 and pong.stdout.count("Leader") == 1
    ok(docker(managers3, leader, "service", "rm", "metered"))


def test_services_converge_on_three_managers_without_workers(managers3: LabSpec) -> None:
    """Every manager's host runs an agent: the 3-manager lab is a 3-node cluster."""
    image = f"{managers3.registry_address}/library/busybox:latest"
    ok(
        docker(
            managers3,
            2,
            "service",
            "create",
            "--name",
            "trio",
            "--replicas",
            "6",
            "--stop-grace-period",
            "1s",
            "--update-monitor",
            "500ms",
            image,
            "sleep",
            "100000",
        )
    )

    def running() -> Counter[str]:
        lines = ok(
            docker(
                managers3,
                3,
                "service",
                "ps",
                "trio",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}} {{.CurrentState}}",
            )
        ).splitlines()
        return Counter(line.split()[0] for line in lines if " Running " in f" {line} ")

    hosts = [f"{managers3.name}-h{i}" for i in (1, 2, 3)]
    assert running() == Counter({h: 2 for h in hosts})
    ok(docker(managers3, 1, "service", "scale", "trio=9"))
    assert running() == Counter({h: 3 for h in hosts})
    ok(docker(managers3, 1, "service", "scale", "trio=3"))
    deadline = time.monotonic() + 30
    while running() != Counter({h: 1 for h in hosts}):
        assert time.monotonic() < deadline, f"scale down to 3: {running()}"
        time.sleep(0.3)
    ok(docker(managers3, 1, "service", "rm", "trio"))
