"""A 3-host lab: containerd on every host, a shared underlay, own hostnames."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time

import pytest

from lab.spec import LabSpec
from lab.supervisor import read_status
from lab.system import process_alive
from tests.lab.helpers import clusterctl, in_host, lab_pids, leftovers
from tests.lab_fixtures import LabFactory, new_lab_name

pytestmark = pytest.mark.lab

VERSION_SCRIPT = (
    "import asyncio, pathlib, sys; from runtime.containerd_client import fetch_version; "
    "print(asyncio.run(fetch_version(pathlib.Path(sys.argv[1]))))"
)


def test_every_containerd_answers_grpc_from_within_its_host(lab3: LabSpec) -> None:
    for host in lab3.all_hosts():
        version = in_host(
            lab3, host.name, sys.executable, "-c", VERSION_SCRIPT, str(host.containerd_socket)
        )
        assert version.strip().startswith("1.")


def test_every_host_reaches_every_other_over_the_underlay(lab3: LabSpec) -> None:
    for a, b in itertools.permutations(lab3.all_hosts(), 2):
        out = in_host(lab3, a.name, "busybox", "ping", "-c", "1", "-W", "2", str(b.address))
        assert "1 packets received" in out, f"{a.name} -> {b.name}: {out}"


def test_each_host_sees_its_own_hostname_and_only_its_own_links(lab3: LabSpec) -> None:
    for host in lab3.all_hosts():
        assert in_host(lab3, host.name, "hostname").strip() == host.hostname
        links = json.loads(in_host(lab3, host.name, "ip", "-j", "link", "show"))
        assert sorted(link["ifname"] for link in links) == ["eth0", "lo"]
        addrs = json.loads(in_host(lab3, host.name, "ip", "-j", "-4", "addr", "show", "eth0"))
        assert addrs[0]["addr_info"][0]["local"] == str(host.address)
    assert os.uname().nodename not in {h.hostname for h in lab3.all_hosts()}


def test_the_registry_answers_on_host_one_from_every_host(lab3: LabSpec) -> None:
    for host in lab3.all_hosts():
        out = in_host(
            lab3,
            host.name,
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            f"http://{lab3.registry_address}/v2/",
        )
        assert out.strip() == "{}"


def test_the_supervisor_restarts_a_containerd_that_dies(lab3: LabSpec) -> None:
    name = "h2/containerd"
    before = read_status(lab3.directory)[name]
    assert isinstance(before["pid"], int)
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = read_status(lab3.directory)[name]
        if now["pid"] not in (None, before["pid"]):
            break
        time.sleep(0.05)
    else:
        pytest.fail("containerd on h2 was not restarted within 15 s")
    # ...and the restarted one answers again.
    deadline = time.monotonic() + 15
    while (
        json.loads(clusterctl("lab", "status", lab3.name, "--format", "json").stdout)["state"]
        != "up"
    ):
        assert time.monotonic() < deadline, "lab did not become healthy again"
        time.sleep(0.1)


def test_lab_ls_and_status_describe_the_lab(lab3: LabSpec) -> None:
    labs = json.loads(clusterctl("lab", "ls", "--format", "json").stdout)
    mine = next(lab for lab in labs if lab["name"] == lab3.name)
    assert mine["hosts"] == 3 and mine["underlay"] == str(lab3.underlay)
    status = clusterctl("lab", "status", lab3.name)
    assert status.returncode == 0
    for host in lab3.all_hosts():
        assert str(host.address) in status.stdout
        assert str(host.containerd_socket) in status.stdout


def test_down_removes_everything_and_can_run_twice(lab_factory: LabFactory) -> None:
    spec = lab_factory(2)
    pids = lab_pids(spec.name)
    assert len(pids) >= 4  # supervisor, 2 containerds, the registry
    first = clusterctl("lab", "down", spec.name)
    assert first.returncode == 0, first.stderr
    assert leftovers(spec.name) == []
    assert not [p for p in pids if process_alive(p)]
    second = clusterctl("lab", "down", spec.name)
    assert second.returncode == 0 and "nothing to remove" in second.stderr


def test_two_labs_exist_at_once_on_different_underlays(lab_factory: LabFactory) -> None:
    one, two = lab_factory(1), lab_factory(1)
    assert not one.underlay.overlaps(two.underlay)
    for spec in (one, two):
        assert in_host(spec, "h1", "hostname").strip() == f"{spec.name}-h1"
        out = in_host(
            spec, "h1", "busybox", "wget", "-q", "-O", "-", f"http://{spec.registry_address}/v2/"
        )
        assert out.strip() == "{}"


def test_lab_up_with_managers_makes_a_cluster_and_a_context_for_it() -> None:
    name = new_lab_name()
    try:
        up = clusterctl("lab", "up", "--hosts", "2", "--managers", "1", "--name", name, timeout=300)
        assert up.returncode == 0, up.stderr
        assert f"lab-{name} (in use" in up.stdout
        contexts = clusterctl("context", "ls", "--format", "json")
        context = next(c for c in json.loads(contexts.stdout) if c["name"] == f"lab-{name}")
        assert context["current"]
        nodes = clusterctl("node", "ls")
        assert nodes.returncode == 0, nodes.stderr
        rows = nodes.stdout.strip().splitlines()[1:]
        assert len(rows) == 2 and all("Ready" in row for row in rows)
        assert sum("Leader" in row for row in rows) == 1
    finally:
        clusterctl("lab", "down", name)
    assert f"lab-{name}" not in clusterctl("context", "ls").stdout
