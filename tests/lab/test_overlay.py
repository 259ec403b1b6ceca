"""Overlay networks across a 3-host lab (1 manager, 2 workers): containers
on different hosts talk over VXLAN, find services by name, reach a VIP's
tasks in turn, and published ports answer on every node."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from lab.configs import docker_tls_args, runtime_config
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.services import kill_service, service_pid
from lab.spec import LabSpec
from lab.status import exec_argv
from runtime.driver import ContainerdRuntime
from tests.lab_fixtures import CREATED_BY, new_lab_name

pytestmark = pytest.mark.lab
DOCKER = "/usr/bin/docker"
# A web server that answers with its own container's hostname (the task's).
WEB = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]


@pytest.fixture(scope="module")
def cluster(_labs_cleaned_up: None) -> Iterator[LabSpec]:
    name = new_lab_name()
    try:
        yield lab_up(name, 3, created_by=CREATED_BY, managers=1)
    finally:
        lab_down(name)


def docker(lab: LabSpec, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [DOCKER, *docker_tls_args(lab, lab.host(1)), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 or not check, done.stderr
    return done


def wait_for(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def service(lab: LabSpec, name: str, *flags: str, command: list[str] | None = None) -> None:
    docker(
        lab, "service", "create", "--detach", "--stop-grace-period", "1s", "--name", name,
        *flags, busybox_reference(lab), *(command or ["sleep", "100000"]),
    )  # fmt: skip


def running(lab: LabSpec, name: str) -> list[dict[str, str]]:
    lines = docker(lab, "service", "ps", name, "--no-trunc", "--format", "{{json .}}").stdout
    return [
        task
        for task in (json.loads(line) for line in lines.splitlines())
        if task["DesiredState"] == "Running" and task["CurrentState"].startswith("Running")
    ]


def converged(lab: LabSpec, name: str, replicas: int) -> None:
    wait_for(lambda: len(running(lab, name)) == replicas, f"{name}: {replicas} tasks running")


def host_of(lab: LabSpec, task: dict[str, str]) -> int:
    return next(h.index for h in lab.all_hosts() if h.hostname == task["Node"])


def inside(lab: LabSpec, task: dict[str, str], *argv: str, timeout: float = 20) -> tuple[int, str]:
    async def run() -> tuple[int, str]:
        config = runtime_config(lab, lab.host(host_of(lab, task)))
        async with ContainerdRuntime(config) as runtime:
            done = await runtime.exec(task["ID"], list(argv), timeout=timeout)
            return done.exit_code, (done.stdout + done.stderr).decode()

    return asyncio.run(run())


def address(lab: LabSpec, task_id: str, network: str) -> str:
    inspected = json.loads(docker(lab, "inspect", "--type", "task", task_id).stdout)[0]
    for attachment in inspected["NetworksAttachments"]:
        if attachment["Network"]["Spec"]["Name"] == network:
            return str(attachment["Addresses"][0]).split("/")[0]
    raise AssertionError(f"task {task_id} is not on {network}")


def test_containers_on_one_overlay_talk_across_hosts_and_not_across_overlays(
    cluster: LabSpec,
) -> None:
    docker(cluster, "network", "create", "-d", "overlay", "front")
    docker(cluster, "network", "create", "-d", "overlay", "back")
    service(cluster, "web", "--replicas", "3", "--network", "front", command=WEB)
    service(cluster, "lonely", "--network", "back")
    converged(cluster, "web", 3)
    converged(cluster, "lonely", 1)
    tasks = running(cluster, "web")
    assert len({t["Node"] for t in tasks}) == 3  # one on each host
    client, *others = tasks
    for other in others:
        ip = address(cluster, other["ID"], "front")
        code, out = inside(cluster, client, "ping", "-c", "2", "-W", "2", ip)
        assert code == 0, out
        code, out = inside(
            cluster, client, "timeout", "5", "wget", "-q", "-O", "-", f"http://{ip}/"
        )
        assert code == 0 and out.strip() == other["ID"][:12], out
    # The encapsulating packets bypass conntrack on every host they cross.
    for host in {host_of(cluster, t) for t in tasks}:
        table = subprocess.run(
            exec_argv(cluster.name, f"h{host}", ["cat", "/proc/net/nf_conntrack"]),
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        assert "dport=4789" not in table, table
    lonely = running(cluster, "lonely")[0]
    cut_off = address(cluster, lonely["ID"], "back")
    code, _ = inside(cluster, client, "ping", "-c", "1", "-W", "2", cut_off)
    assert code != 0  # another overlay: unreachable


def test_dns_names_services_tasks_and_only_on_shared_networks(cluster: LabSpec) -> None:
    tasks = running(cluster, "web")
    client = tasks[0]
    code, out = inside(cluster, client, "nslookup", "web")
    vip = json.loads(docker(cluster, "service", "inspect", "web").stdout)[0]["Endpoint"][
        "VirtualIPs"
    ]
    front = next(v["Addr"].split("/")[0] for v in vip)
    assert code == 0 and front in out, out
    code, out = inside(cluster, client, "nslookup", "tasks.web")
    assert code == 0, out
    for task in tasks:
        assert address(cluster, task["ID"], "front") in out
    task_name = f"web.{tasks[1]['Name'].split('.')[1]}.{tasks[1]['ID']}"
    code, out = inside(cluster, client, "nslookup", task_name)
    assert code == 0 and address(cluster, tasks[1]["ID"], "front") in out, out
    code, out = inside(cluster, client, "nslookup", "lonely")  # on "back" only
    assert code != 0, out


def test_a_vip_spreads_connections_and_drops_a_removed_task(cluster: LabSpec) -> None:
    client = running(cluster, "web")[0]
    seen: Counter[str] = Counter()
    for _ in range(30):
        code, out = inside(cluster, client, "timeout", "5", "wget", "-q", "-O", "-", "http://web/")
        assert code == 0, out
        seen[out.strip()] += 1
    assert set(seen) == {t["ID"][:12] for t in running(cluster, "web")}, seen
    docker(cluster, "service", "scale", "--detach", "web=2")
    converged(cluster, "web", 2)
    time.sleep(1.0)
    kept = {t["ID"][:12] for t in running(cluster, "web")}
    client = next(t for t in running(cluster, "web"))
    for _ in range(30):
        code, out = inside(cluster, client, "timeout", "5", "wget", "-q", "-O", "-", "http://web/")
        assert code == 0 and out.strip() in kept, out


def test_a_published_port_answers_on_every_node(cluster: LabSpec) -> None:
    h1, h2 = cluster.host(1).hostname, cluster.host(2).hostname
    service(
        cluster, "site", "--replicas", "2", "--publish", "8080:80",
        "--constraint", f"node.hostname!={cluster.host(3).hostname}", command=WEB,
    )  # fmt: skip
    converged(cluster, "site", 2)
    assert {t["Node"] for t in running(cluster, "site")} == {h1, h2}
    names = {t["ID"][:12] for t in running(cluster, "site")}
    answered: set[str] = set()
    for host in cluster.all_hosts():  # h3 runs no task of it and answers all the same
        for _ in range(6):
            url = f"http://{host.address}:8080/"
            with urllib.request.urlopen(url, timeout=5) as reply:
                answered.add(reply.read().decode().strip())
    assert answered <= names and answered


def test_netd_killed_keeps_connections_and_serves_new_tasks(cluster: LabSpec) -> None:
    tasks = running(cluster, "web")
    client, server = tasks[0], tasks[1]
    ip = address(cluster, server["ID"], "front")
    host = host_of(cluster, client)
    netns = f"shoal-{cluster.name}-ct{client['ID'][:12]}"
    ping = ["ip", "netns", "exec", netns, "busybox", "ping", "-c", "40", "-i", "0.1", "-W", "1", ip]
    pinger = subprocess.Popen(
        exec_argv(cluster.name, f"h{host}", ping),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        old = service_pid(cluster, f"h{host}/netd")
        assert kill_service(cluster, f"h{host}/netd") != old  # kill -9; the supervisor restarts it
        out, _ = pinger.communicate(timeout=30)
    finally:
        pinger.kill()
    assert " 0% packet loss" in out, out
    docker(cluster, "service", "scale", "--detach", "web=3")
    converged(cluster, "web", 3)
    fresh = [t for t in running(cluster, "web") if t["ID"] not in {x["ID"] for x in tasks}]
    for task in fresh:
        new_ip = address(cluster, task["ID"], "front")
        code, out = inside(
            cluster, client, "timeout", "5", "wget", "-q", "-O", "-", f"http://{new_ip}/"
        )
        assert code == 0 and out.strip() == task["ID"][:12], out


def test_bad_network_input_gets_dockers_errors(cluster: LabSpec) -> None:
    docker(cluster, "network", "create", "-d", "overlay", "--subnet", "10.9.0.0/24", "taken")
    overlap = docker(
        cluster,
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.9.0.0/16",
        "over",
        check=False,
    )
    assert overlap.returncode != 0 and "overlaps" in overlap.stderr
    unknown = docker(
        cluster, "service", "create", "--network", "nosuchnet", busybox_reference(cluster),
        check=False,
    )  # fmt: skip
    assert unknown.returncode != 0 and "nosuchnet" in unknown.stderr
    in_use = docker(cluster, "network", "rm", "front", check=False)
    assert in_use.returncode != 0 and "in use" in in_use.stderr
    taken = docker(
        cluster, "service", "create", "--publish", "8080:80", busybox_reference(cluster),
        check=False,
    )  # fmt: skip
    assert taken.returncode != 0 and "already in use" in taken.stderr
    docker(cluster, "network", "rm", "taken")


def test_netd_metrics(cluster: LabSpec) -> None:
    host = host_of(cluster, running(cluster, "web")[0])
    url = f"http://{cluster.host(host).address}:9324/metrics"

    def text() -> str:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return str(reply.read().decode())

    wait_for(lambda: "swarm_netd_network_bytes_total{" in text(), "traffic counters", 20)
    for name in (
        "swarm_netd_endpoints{",
        "swarm_netd_fdb_entries{",
        "swarm_netd_network_bytes_total{",
        "swarm_netd_programming_seconds_count",
        "swarm_netd_dns_queries_total{",
    ):
        assert name in text(), name


def test_a_global_service_is_on_its_overlay_too(cluster: LabSpec) -> None:
    service(cluster, "everywhere", "--mode", "global", "--network", "front")
    converged(cluster, "everywhere", 3)
    web = running(cluster, "web")[0]
    for task in running(cluster, "everywhere"):
        ip = address(cluster, task["ID"], "front")
        code, out = inside(cluster, web, "ping", "-c", "1", "-W", "2", ip)
        assert code == 0, out
    docker(cluster, "service", "rm", "everywhere")


def test_host_mode_publishing_and_egress(cluster: LabSpec) -> None:
    h2 = cluster.host(2)
    service(
        cluster, "local", "--publish", "mode=host,target=80,published=8081",
        "--constraint", f"node.hostname=={h2.hostname}", command=WEB,
    )  # fmt: skip
    converged(cluster, "local", 1)
    task = running(cluster, "local")[0]
    with urllib.request.urlopen(f"http://{h2.address}:8081/", timeout=5) as reply:
        assert reply.read().decode().strip() == task["ID"][:12]
    with pytest.raises(OSError):  # host mode: only where a task runs
        urllib.request.urlopen(f"http://{cluster.host(3).address}:8081/", timeout=5)
    # Egress through the node's gateway bridge: the lab registry on h1's underlay.
    code, out = inside(
        cluster, task, "timeout", "5", "wget", "-q", "-O", "-",
        f"http://{cluster.registry_address}/v2/",
    )  # fmt: skip
    assert code == 0 and out.strip() == "{}", out
    docker(cluster, "service", "rm", "local")


def test_health_checks_gate_traffic_and_replace_unhealthy_tasks(cluster: LabSpec) -> None:
    service(
        cluster, "checked", "--replicas", "2", "--network", "front",
        "--health-cmd", "test ! -f /tmp/sick", "--health-interval", "1s",
        "--health-retries", "2", "--restart-delay", "1s", command=WEB,
    )  # fmt: skip
    converged(cluster, "checked", 2)  # running only once their check passed
    sick, _well = running(cluster, "checked")
    code, out = inside(cluster, sick, "touch", "/tmp/sick")
    assert code == 0, out

    def failed_unhealthy() -> bool:
        lines = docker(
            cluster, "service", "ps", "checked", "--no-trunc", "--format", "{{.ID}} {{.Error}}"
        )
        mine = [line for line in lines.stdout.splitlines() if line.startswith(sick["ID"])]
        return bool(mine) and "task: unhealthy container" in mine[0]  # the CLI quotes it

    wait_for(failed_unhealthy, "the sick task was not failed as unhealthy", 30)
    converged(cluster, "checked", 2)  # a replacement runs
    client = running(cluster, "web")[0]
    for _ in range(20):  # and the failed task gets no more traffic through the VIP
        code, out = inside(
            cluster, client, "timeout", "5", "wget", "-q", "-O", "-", "http://checked/"
        )
        assert code == 0 and out.strip() != sick["ID"][:12], out
    assert sick["ID"] not in {t["ID"] for t in running(cluster, "checked")}
    docker(cluster, "service", "rm", "checked")


def test_secrets_reach_their_task_on_tmpfs_only(cluster: LabSpec) -> None:
    value = f"hunter{time.monotonic_ns()}"
    subprocess.run(
        [DOCKER, *docker_tls_args(cluster, cluster.host(1)), "secret", "create", "pw", "-"],
        input=value, text=True, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    service(
        cluster, "vault", "--secret", "pw",
        "--secret", "source=pw,target=copy,mode=0400",
    )  # fmt: skip
    converged(cluster, "vault", 1)
    task = running(cluster, "vault")[0]
    code, out = inside(cluster, task, "cat", "/run/secrets/pw")
    assert code == 0 and out == value, out
    code, out = inside(cluster, task, "stat", "-c", "%a", "/run/secrets/copy")
    assert code == 0 and out.strip() == "400", out
    code, out = inside(cluster, task, "grep", "/run/secrets/pw", "/proc/mounts")
    assert code == 0 and " tmpfs " in out, out
    in_use = docker(cluster, "secret", "rm", "pw", check=False)
    assert in_use.returncode != 0 and "in use" in in_use.stderr
    # Nothing of it on any node's disk (the tmpfs is not visible from here),
    # nor in the managers' Raft log and snapshots: in clear or base64.
    encoded = base64.b64encode(value.encode()).decode().rstrip("=")[:-2]
    for host in cluster.all_hosts():
        places = [host.directory / part for part in ("agent", "runtime", "manager")]
        for needle in (value, encoded):
            found = subprocess.run(
                ["grep", "-rla", needle, *[str(p) for p in places if p.exists()]],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert found.stdout == "", found.stdout
    docker(cluster, "service", "rm", "vault")
    where = host_of(cluster, task)
    listing = ["ls", str(cluster.host(where).directory / "agent" / "task-files")]
    wait_for(
        lambda: task["ID"] not in subprocess.run(
            exec_argv(cluster.name, f"h{where}", listing), capture_output=True, text=True
        ).stdout,
        "the task's tmpfs outlived its container",
    )  # fmt: skip
    docker(cluster, "secret", "rm", "pw")
