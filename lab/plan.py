"""Pure planners: what `lab up` creates and what `lab down` removes.

`plan_up(spec)` lists every kernel object, mount and file of a lab in creation
order; `plan_down(...)` turns what is recorded and what is observed into the
removals, in the order that lets each succeed. Both return frozen values that
tests compare; `lab.apply` carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.spec import LabSpec, netns_belongs_to_lab

SWITCH_BRIDGE = "br0"
SWITCH_UPLINK = "uplink"
HOST_LINK = "eth0"


# ---- steps of `lab up` ------------------------------------------------------


@dataclass(frozen=True)
class MakeDir:
    path: Path


@dataclass(frozen=True)
class PrivateBindMount:
    """Bind a directory onto itself, private, so namespace files can live in it."""

    path: Path


@dataclass(frozen=True)
class AddNetns:
    name: str


@dataclass(frozen=True)
class AddBridge:
    netns: str
    name: str


@dataclass(frozen=True)
class AddVethPair:
    """`netns` None is the machine's own namespace."""

    netns: str | None
    name: str
    peer_netns: str
    peer_name: str


@dataclass(frozen=True)
class SetMaster:
    netns: str
    link: str
    master: str


@dataclass(frozen=True)
class AddAddress:
    netns: str | None
    link: str
    cidr: str


@dataclass(frozen=True)
class LinkUp:
    netns: str | None
    link: str


@dataclass(frozen=True)
class PlainBridging:
    """No iptables hooks on bridged frames in this namespace. A namespace made
    while `br_netfilter` is loaded (dockerd loads it) starts with
    `bridge-nf-call-*` on, and every frame crossing one of its bridges would
    pay for conntrack; the lab's hosts and switch stand for plain machines and
    a plain switch, where nothing asked for that."""

    netns: str


@dataclass(frozen=True)
class MakeHostNamespaces:
    """Persistent mount and UTS namespaces for one host, bound to files.

    The mount namespace gets its own tmpfs on /run/containerd, where runc and the
    shims keep their state, so hosts' containerds never see each other's.
    """

    mount_ns_file: Path
    uts_ns_file: Path
    hostname: str


@dataclass(frozen=True)
class WriteFile:
    path: Path
    content: str


@dataclass(frozen=True)
class StartSupervisor:
    lab_directory: Path
    switch_netns: str


UpStep = (
    MakeDir
    | PrivateBindMount
    | AddNetns
    | AddBridge
    | AddVethPair
    | SetMaster
    | AddAddress
    | LinkUp
    | PlainBridging
    | MakeHostNamespaces
    | WriteFile
    | StartSupervisor
)


def plan_network(spec: LabSpec) -> list[UpStep]:
    """The underlay: a switch namespace with a bridge, a veth per host, and one
    veth into the machine's own namespace so local tools reach the hosts."""
    sw = spec.switch_netns
    steps: list[UpStep] = [
        AddNetns(sw),
        PlainBridging(sw),
        AddBridge(sw, SWITCH_BRIDGE),
        LinkUp(sw, SWITCH_BRIDGE),
        LinkUp(sw, "lo"),
        AddVethPair(None, spec.root_link, sw, SWITCH_UPLINK),
        SetMaster(sw, SWITCH_UPLINK, SWITCH_BRIDGE),
        LinkUp(sw, SWITCH_UPLINK),
        AddAddress(None, spec.root_link, f"{spec.gateway}/{spec.underlay.prefixlen}"),
        LinkUp(None, spec.root_link),
    ]
    for host in spec.all_hosts():
        steps += [
            AddNetns(host.netns),
            PlainBridging(host.netns),
            AddVethPair(sw, host.switch_port, host.netns, HOST_LINK),
            SetMaster(sw, host.switch_port, SWITCH_BRIDGE),
            LinkUp(sw, host.switch_port),
            AddAddress(host.netns, HOST_LINK, f"{host.address}/{host.prefixlen}"),
            LinkUp(host.netns, HOST_LINK),
            LinkUp(host.netns, "lo"),
        ]
    return steps


def plan_up(spec: LabSpec, files: dict[Path, str]) -> list[UpStep]:
    """Everything `lab up` does, in order; `files` are the rendered configs."""
    steps: list[UpStep] = [MakeDir(spec.directory), MakeDir(spec.ns_directory)]
    steps.append(PrivateBindMount(spec.ns_directory))
    steps += [MakeDir(h.directory) for h in spec.all_hosts()]
    steps += plan_network(spec)
    steps += [
        MakeHostNamespaces(h.mount_ns_file, h.uts_ns_file, h.hostname) for h in spec.all_hosts()
    ]
    steps += [WriteFile(path, content) for path, content in sorted(files.items())]
    steps.append(StartSupervisor(spec.directory, spec.switch_netns))
    return steps


# ---- steps of `lab down` ----------------------------------------------------


@dataclass(frozen=True)
class KillProcesses:
    """SIGTERM, a grace period, then SIGKILL; only PIDs the lab started."""

    pids: tuple[int, ...]


@dataclass(frozen=True)
class Unmount:
    path: str


@dataclass(frozen=True)
class RemoveCgroup:
    path: str


@dataclass(frozen=True)
class DeleteLink:
    name: str


@dataclass(frozen=True)
class DeleteNetns:
    name: str


@dataclass(frozen=True)
class RemoveTree:
    path: Path


DownStep = KillProcesses | Unmount | RemoveCgroup | DeleteLink | DeleteNetns | RemoveTree


@dataclass(frozen=True)
class Observed:
    """What the machine has now that might belong to the lab."""

    netns: frozenset[str]
    root_links: frozenset[str]
    mounts: tuple[str, ...]  # mount points, in /proc/self/mountinfo order
    supervisor_pids: frozenset[int]
    lab_pids: frozenset[int]  # in the lab's namespaces or cgroups
    cgroups: tuple[str, ...]  # the lab's cgroup directories, parents before children
    directory_exists: bool


@dataclass(frozen=True)
class Recorded:
    """What the lab's record says was (about to be) created."""

    netns: frozenset[str] = frozenset()
    root_links: frozenset[str] = frozenset()
    mounts: frozenset[str] = frozenset()


def plan_down(lab: str, directory: Path, recorded: Recorded, observed: Observed) -> list[DownStep]:
    steps: list[DownStep] = []
    # The supervisor goes first, or it would restart what we stop.
    if observed.supervisor_pids:
        steps.append(KillProcesses(tuple(sorted(observed.supervisor_pids))))
    others = observed.lab_pids - observed.supervisor_pids
    if others:
        steps.append(KillProcesses(tuple(sorted(others))))
    # Processes first (they hold mounts and namespaces), then mounts innermost
    # first, then links and namespaces, then the files.
    prefix = str(directory).rstrip("/") + "/"
    ours = [
        m
        for m in observed.mounts
        if m.startswith(prefix) or m == str(directory) or m in recorded.mounts
    ]
    # Later mounts sit on top of earlier ones (a stacked mount point appears twice).
    steps += [Unmount(mount) for mount in reversed(ours)]
    steps += [RemoveCgroup(path) for path in reversed(observed.cgroups)]
    root_link = f"shl-{lab}"
    for link in sorted((recorded.root_links | {root_link}) & observed.root_links):
        steps.append(DeleteLink(link))
    lab_netns = {n for n in observed.netns if netns_belongs_to_lab(n, lab)}
    for netns in sorted((recorded.netns & observed.netns) | lab_netns):
        steps.append(DeleteNetns(netns))
    if observed.directory_exists:
        steps.append(RemoveTree(directory))
    return steps
