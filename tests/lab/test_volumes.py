"""Volumes on a lab of 1 manager + 2 workers, through the stock docker CLI:
a distributed (shoal) volume follows its task from host to host and keeps
its data when a volume server goes; a local volume outlives its container on
its host; a non-shared volume is mounted on one node at a time; bad input is
refused with a clear message."""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from lab.configs import VOLUMED_METRICS_PORT
from lab.seed import busybox_reference
from lab.services import kill_service, start_service, stop_service
from lab.spec import LabSpec
from tests.lab.helpers import clusterctl, docker_on, in_host, lab_in_context
from tests.lab.helpers import wait_for as wait
from tests.lab.test_convergence import containers_on

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def lab(_labs_cleaned_up: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSpec]:
    """The lab, and a clusterctl configuration of this module's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLUSTERCTL_CONFIG", str(tmp_path_factory.mktemp("clusterctl")))
        patch.delenv("CLUSTERCTL_CONTEXT", raising=False)
        with lab_in_context(3, managers=1) as made:
            yield made


def docker(lab: LabSpec, *args: str, check: bool = True) -> str:
    return docker_on(lab, *args, check=check)


def wait_for(check: Callable[[], object], what: str, timeout: float = 90) -> None:
    wait(check, what, timeout)


def keeper_script(token: str) -> str:
    """Reads the file a task before it left, or writes it; then stays up."""
    return (
        f"if [ -f /data/f ]; then echo found $(cat /data/f); "
        f"else echo {token} > /data/f && sync && echo wrote; fi; "
        "trap 'exit 0' TERM; while true; do sleep 0.2; done"
    )


def create(lab: LabSpec, name: str, mount: str, script: str, *flags: str) -> None:
    docker(
        lab, "service", "create", "--detach", "--name", name, "--stop-grace-period", "1s",
        "--mount", mount, *flags, busybox_reference(lab), "sh", "-c", script,
    )  # fmt: skip


def running_on(lab: LabSpec, service: str) -> list[str]:
    lines = docker(
        lab, "service", "ps", service, "--filter", "desired-state=running",
        "--format", "{{.Node}} {{.CurrentState}}",
    )  # fmt: skip
    return sorted(line.split()[0] for line in lines.splitlines() if " Running" in line)


def logs(lab: LabSpec, service: str) -> str:
    return docker(lab, "service", "logs", "--raw", service)


def host_of(lab: LabSpec, hostname: str) -> int:
    return next(i for i in range(1, lab.hosts + 1) if lab.host(i).hostname == hostname)


def fuse_mounts(lab: LabSpec, host: int) -> list[str]:
    mountinfo = in_host(lab, lab.host(host).name, "cat", "/proc/self/mountinfo")
    return [line.split()[4] for line in mountinfo.splitlines() if " - fuse" in line]


def volumed_answers(lab: LabSpec, host: int) -> bool:
    url = f"http://{lab.host(host).address}:{VOLUMED_METRICS_PORT}/metrics"
    done = clusterctl(
        "lab", "exec", "--lab", lab.name, lab.host(host).name, "--", "curl", "-sf", url
    )
    return 'swarm_volumed_mounts{driver="shoal"} 1.0' in done.stdout


def set_availability(lab: LabSpec, availability: str, *hosts: int) -> None:
    for host in hosts:
        docker(lab, "node", "update", "--availability", availability, lab.host(host).hostname)


def write_on_host2(lab: LabSpec, service: str, volume: str, token: str) -> None:
    """A one-task service on host 2 (the others paused meanwhile) that writes
    `token` into a new distributed volume."""
    set_availability(lab, "pause", 1, 3)
    try:
        create(lab, service, f"type=volume,source={volume},target=/data,volume-driver=shoal",
               keeper_script(token))  # fmt: skip
        wait_for(lambda: running_on(lab, service) == [lab.host(2).hostname], f"{service} on h2")
        wait_for(lambda: "wrote" in logs(lab, service), "the first task did not write")
    finally:
        set_availability(lab, "active", 1, 3)


def test_a_distributed_volume_follows_its_task_and_survives_a_volume_server(lab: LabSpec) -> None:
    token = secrets.token_hex(6)
    write_on_host2(lab, "keeper", "kept", token)
    assert any(p.endswith("/kept") for p in fuse_mounts(lab, 2))
    # kill -9 volumed under the running task: its mount stays, and the volumed
    # that comes back adopts it (and later gives it back).
    kill_service(lab, f"{lab.host(2).name}/volumed")
    wait_for(lambda: volumed_answers(lab, 2), "volumed did not come back")
    assert any(p.endswith("/kept") for p in fuse_mounts(lab, 2))
    assert running_on(lab, "keeper") == [lab.host(2).hostname]

    set_availability(lab, "drain", 2)
    try:
        wait_for(lambda: running_on(lab, "keeper") not in ([], [lab.host(2).hostname]), "moved")
        wait_for(lambda: f"found {token}" in logs(lab, "keeper"), "the new task did not read it")
        # Host 2 gave the volume back when its task stopped.
        assert not any(p.endswith("/kept") for p in fuse_mounts(lab, 2))

        # Replication 001: with host 2's volume server (and filer) gone, a
        # third host, which never cached the file, still reads it.
        stop_service(lab, f"{lab.host(2).name}/volumed", signal.SIGTERM)
        reader_host = ({1, 3} - {host_of(lab, running_on(lab, "keeper")[0])}).pop()
        docker(lab, "service", "rm", "keeper")
        create(lab, "reader", "type=volume,source=kept,target=/data", keeper_script("unused"),
               "--constraint", f"node.hostname=={lab.host(reader_host).hostname}")  # fmt: skip
        wait_for(lambda: f"found {token}" in logs(lab, "reader"), "no copy of the data left")
    finally:
        start_service(lab, f"{lab.host(2).name}/volumed")
        set_availability(lab, "active", 2)
        docker(lab, "service", "rm", "keeper", "reader", check=False)


def test_a_local_volume_outlives_its_container_on_its_host(lab: LabSpec) -> None:
    token = secrets.token_hex(6)
    on_host3 = ("--constraint", f"node.hostname=={lab.host(3).hostname}")
    mount = "type=volume,source=scratch,target=/data"
    create(lab, "local1", mount, keeper_script(token), *on_host3)
    wait_for(lambda: "wrote" in logs(lab, "local1"), "the first container did not write")
    docker(lab, "service", "rm", "local1")
    create(lab, "local2", mount, keeper_script("x"), *on_host3)
    try:
        wait_for(
            lambda: f"found {token}" in logs(lab, "local2"), "the data went with the container"
        )
        assert docker(lab, "volume", "inspect", "scratch", "--format", "{{.Driver}}") == "local\n"
    finally:
        docker(lab, "service", "rm", "local2", check=False)


def test_a_non_shared_volume_is_mounted_on_one_node_at_a_time(lab: LabSpec) -> None:
    docker(lab, "volume", "create", "-d", "shoal", "solo")
    mount = "type=volume,source=solo,target=/data"
    create(lab, "first", mount, keeper_script("a"), "--constraint",
           f"node.hostname=={lab.host(2).hostname}")  # fmt: skip
    wait_for(lambda: running_on(lab, "first") == [lab.host(2).hostname], "first on h2")
    create(lab, "second", mount, keeper_script("b"), "--constraint",
           f"node.hostname=={lab.host(3).hostname}")  # fmt: skip
    try:
        wait_for(
            lambda: "volume solo is in use on node" in docker(
                lab, "service", "ps", "second", "--no-trunc", "--format", "{{.Error}}"
            ),
            "the second mount was not refused",
        )  # fmt: skip
        assert running_on(lab, "second") == []
        # In use: no removal.
        refused = docker(lab, "volume", "rm", "solo", check=False)
        assert "volume is in use" in refused, refused
        # Once the first task is gone the second one gets the volume.
        docker(lab, "service", "rm", "first")
        wait_for(lambda: running_on(lab, "second") == [lab.host(3).hostname], "second never ran")
    finally:
        docker(lab, "service", "rm", "first", "second", check=False)

    def removed() -> bool:  # once the second task's container has stopped
        docker(lab, "volume", "rm", "solo", check=False)
        return "solo" not in docker(lab, "volume", "ls", "-q").split()

    wait_for(removed, "the volume was not removed once unused")


def test_volumed_metrics_count_mounts_and_operations(lab: LabSpec) -> None:
    docker(lab, "volume", "create", "-d", "shoal", "counted")
    create(lab, "counter", "type=volume,source=counted,target=/data", keeper_script("c"),
           "--constraint", f"node.hostname=={lab.host(1).hostname}")  # fmt: skip
    try:
        wait_for(lambda: "wrote" in logs(lab, "counter"), "no task wrote")
        url = f"http://{lab.host(1).address}:{VOLUMED_METRICS_PORT}/metrics"
        text = in_host(lab, lab.host(1).name, "curl", "-sf", url)
        assert re.search(r'swarm_volumed_mounts\{driver="shoal"\} [1-9]', text), text
        assert re.search(r'swarm_volumed_operations_total\{.*operation="Mount"', text), text
    finally:
        docker(lab, "service", "rm", "counter", check=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("volume", "create", "-d", "nosuch", "v1"), "unknown volume driver 'nosuch'"),
        (("volume", "create", "-d", "shoal", "-o", "replication=9", "v2"), "invalid replication"),
    ],
)
def test_bad_volume_input_gets_a_clear_error(
    lab: LabSpec, argv: tuple[str, ...], message: str
) -> None:
    out = docker(lab, *argv, check=False)
    assert message in out
    done = clusterctl(*argv)
    assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1
    assert "v1" not in docker(lab, "volume", "ls", "-q") and "v2" not in docker(lab, "volume", "ls")
    bad_mount = "type=volume,source=v3,target=/data,volume-driver=nosuch"
    refused = docker(lab, "service", "create", "--mount", bad_mount, busybox_reference(lab),
                     check=False)  # fmt: skip
    assert "unknown volume driver 'nosuch'" in refused


def test_a_node_cut_off_stops_its_writer_before_the_volume_moves(lab: LabSpec) -> None:
    """Host 2 loses its link: its agent stops the task that alone may write
    the volume, and only then does the replacement on another host mount it."""
    token = secrets.token_hex(6)
    write_on_host2(lab, "fenced", "fence", token)
    port = lab.host(2).switch_port
    subprocess.run(["ip", "-n", lab.switch_netns, "link", "set", port, "down"], check=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            h2_running = bool(asyncio.run(containers_on(lab, 2)))
            elsewhere = [n for n in running_on(lab, "fenced") if n != lab.host(2).hostname]
            assert not (h2_running and elsewhere), "two hosts ran the volume's writer at once"
            if elsewhere:
                break
            assert time.monotonic() < deadline, "the task never moved off the cut-off host"
            time.sleep(0.3)
        wait_for(lambda: f"found {token}" in logs(lab, "fenced"), "the new task lost the data")
        assert not any(p.endswith("/fence") for p in fuse_mounts(lab, 2))
    finally:
        subprocess.run(["ip", "-n", lab.switch_netns, "link", "set", port, "up"], check=True)
        docker(lab, "service", "rm", "fenced", check=False)
        wait_for(
            lambda: "Ready" in docker(lab, "node", "inspect", lab.host(2).hostname,
                                      "--format", "{{.Status.State}}").title(),
            "host 2 did not come back",
        )  # fmt: skip
