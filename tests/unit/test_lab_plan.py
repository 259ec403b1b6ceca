"""What `lab up` creates and what `lab down` removes, as plans."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lab.configs import render_files, services
from lab.plan import (
    AddBridge,
    AddNetns,
    AddVethPair,
    DeleteLink,
    DeleteNetns,
    KillProcesses,
    MakeHostNamespaces,
    Observed,
    PlainBridging,
    PrivateBindMount,
    Recorded,
    RemoveCgroup,
    RemoveTree,
    StartSupervisor,
    Unmount,
    plan_down,
    plan_up,
)
from lab.record import Record, entries_for
from lab.spec import LabSpec

SPEC = LabSpec("demo", 3, ipaddress.IPv4Network("198.18.0.0/24"), Path("/labs"))
LAB_DIR = Path("/labs/demo")


def observed(**kw: object) -> Observed:
    base: dict[str, object] = {
        "netns": frozenset(),
        "root_links": frozenset({"lo", "eth0"}),
        "mounts": ("/", "/proc"),
        "supervisor_pids": frozenset(),
        "lab_pids": frozenset(),
        "cgroups": (),
        "directory_exists": False,
    }
    base.update(kw)
    return Observed(**base)  # type: ignore[arg-type]


def test_up_creates_a_switch_and_one_namespace_per_host_before_linking_them() -> None:
    steps = plan_up(SPEC, render_files(SPEC))
    netns = [s.name for s in steps if isinstance(s, AddNetns)]
    assert netns == ["shoal-demo-sw", "shoal-demo-h1", "shoal-demo-h2", "shoal-demo-h3"]
    for step in steps:
        if isinstance(step, AddVethPair):
            # both ends' namespaces exist by the time the pair is made
            created_before = {s.name for s in steps[: steps.index(step)] if isinstance(s, AddNetns)}
            assert step.peer_netns in created_before
            assert step.netns is None or step.netns in created_before


def test_every_namespace_with_a_bridge_bridges_plainly_from_the_start() -> None:
    # Before any bridge or port exists: a frame bridged earlier would have
    # gone through conntrack on a machine where dockerd loaded br_netfilter.
    steps = plan_up(SPEC, render_files(SPEC))
    plain = {s.netns: steps.index(s) for s in steps if isinstance(s, PlainBridging)}
    assert set(plain) == {"shoal-demo-sw", "shoal-demo-h1", "shoal-demo-h2", "shoal-demo-h3"}
    for step in steps:
        if isinstance(step, AddBridge | AddVethPair):
            namespaces = {step.netns}
            if isinstance(step, AddVethPair):
                namespaces.add(step.peer_netns)
            assert all(plain[ns] < steps.index(step) for ns in namespaces if ns is not None)


def test_up_starts_the_supervisor_last_after_every_host_has_namespaces() -> None:
    steps = plan_up(SPEC, render_files(SPEC))
    assert isinstance(steps[-1], StartSupervisor)
    hostnames = [s.hostname for s in steps if isinstance(s, MakeHostNamespaces)]
    assert hostnames == ["demo-h1", "demo-h2", "demo-h3"]
    first_ns_file = next(i for i, s in enumerate(steps) if isinstance(s, MakeHostNamespaces))
    bind = next(i for i, s in enumerate(steps) if isinstance(s, PrivateBindMount))
    assert bind < first_ns_file  # namespace files need a private mount to live on


def test_every_object_up_creates_outside_the_lab_directory_is_recorded() -> None:
    entries = [e for s in plan_up(SPEC, render_files(SPEC)) for e in entries_for(s)]
    assert {e["netns"] for e in entries if "netns" in e} == {
        "shoal-demo-sw",
        "shoal-demo-h1",
        "shoal-demo-h2",
        "shoal-demo-h3",
    }
    assert [e["link"] for e in entries if "link" in e] == ["shl-demo"]
    mounts = {e["mount"] for e in entries if "mount" in e}
    assert "/labs/demo/ns" in mounts
    assert "/labs/demo/ns/h3.mnt" in mounts and "/labs/demo/ns/h3.uts" in mounts


def test_every_host_runs_a_containerd_and_host_one_the_registry() -> None:
    names = [s.name for s in services(SPEC)]
    assert names == ["h1/containerd", "h2/containerd", "h3/containerd", "h1/registry"]
    files = render_files(SPEC)
    config = files[SPEC.host(2).containerd_config]
    assert 'address = "/labs/demo/h2/containerd.sock"' in config
    assert "io.containerd.grpc.v1.cri" in config  # disabled
    assert "addr: 198.18.0.11:5000" in files[LAB_DIR / "h1" / "registry.yml"]


def test_down_of_nothing_plans_nothing() -> None:
    assert plan_down("demo", LAB_DIR, Recorded(), observed()) == []


def test_down_stops_the_supervisor_first_then_the_rest_then_unmounts_innermost_first() -> None:
    seen = observed(
        netns=frozenset({"shoal-demo-sw", "shoal-demo-h1", "shoal-other-h1", "shoal-demo-x-h1"}),
        root_links=frozenset({"lo", "shl-demo", "shl-other"}),
        mounts=("/", "/labs/demo/ns", "/labs/demo/ns/h1.mnt", "/labs/other/ns"),
        supervisor_pids=frozenset({10}),
        lab_pids=frozenset({10, 11, 12}),
        cgroups=("/sys/fs/cgroup/pids/shoal-demo", "/sys/fs/cgroup/pids/shoal-demo/h1"),
        directory_exists=True,
    )
    assert plan_down("demo", LAB_DIR, Recorded(), seen) == [
        KillProcesses((10,)),
        KillProcesses((11, 12)),
        Unmount("/labs/demo/ns/h1.mnt"),
        Unmount("/labs/demo/ns"),
        RemoveCgroup("/sys/fs/cgroup/pids/shoal-demo/h1"),
        RemoveCgroup("/sys/fs/cgroup/pids/shoal-demo"),
        DeleteLink("shl-demo"),
        DeleteNetns("shoal-demo-h1"),
        DeleteNetns("shoal-demo-sw"),
        RemoveTree(LAB_DIR),
    ]


def test_down_removes_recorded_objects_even_when_names_do_not_follow_the_convention() -> None:
    recorded = Recorded(netns=frozenset({"oddly-named"}), mounts=frozenset({"/mnt/odd"}))
    seen = observed(netns=frozenset({"oddly-named"}), mounts=("/", "/mnt/odd"))
    assert plan_down("demo", LAB_DIR, recorded, seen) == [
        Unmount("/mnt/odd"),
        DeleteNetns("oddly-named"),
    ]


def test_record_survives_a_torn_last_line(tmp_path: Path) -> None:
    record = Record(tmp_path)
    record.append([{"netns": "shoal-demo-sw"}, {"mount": "/labs/demo/ns"}])
    with open(record.path, "a") as f:
        f.write('{"netns": "shoal-de')  # killed mid-write
    assert record.read() == Recorded(
        netns=frozenset({"shoal-demo-sw"}), mounts=frozenset({"/labs/demo/ns"})
    )
