"""/info, /version and /events (docker-api.md §2, §3)."""

from __future__ import annotations

import msgspec

from api.base import Obj, always, always_new
from api.cluster import ClusterInfo

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
ENGINE_VERSION = "20.10.24"
LOCAL_NODE_STATES = ("", "inactive", "pending", "active", "error", "locked")


class Peer(Obj):
    node_id: str = always("", name="NodeID")
    addr: str = always("")


class SwarmInfo(Obj):
    """`Info.Swarm`. The CLI shows cluster details only when Cluster is set,
    ControlAvailable is true and Error is empty."""

    node_id: str = always("", name="NodeID")
    node_addr: str = always("")
    local_node_state: str = always("inactive")
    control_available: bool = always(False)
    error: str = always("")
    remote_managers: list[Peer] = always_new(list)
    nodes: int = 0
    managers: int = 0
    cluster: ClusterInfo | None = None
    warnings: list[str] = msgspec.field(default_factory=list)


class PluginsInfo(msgspec.Struct, rename="pascal"):
    volume: list[str] = msgspec.field(default_factory=lambda: ["local"])
    network: list[str] = msgspec.field(default_factory=lambda: ["overlay"])
    authorization: list[str] = msgspec.field(default_factory=list)
    log: list[str] = msgspec.field(default_factory=lambda: ["json-file"])


class Commit(msgspec.Struct, rename="pascal"):
    id: str = msgspec.field(default="", name="ID")
    expected: str = ""


class RuntimeInfo(msgspec.Struct, omit_defaults=True):
    path: str = ""
    runtime_args: list[str] = msgspec.field(default_factory=list, name="runtimeArgs")


def _runtimes() -> dict[str, RuntimeInfo]:
    return {"runc": RuntimeInfo(path="runc")}


class SystemInfo(msgspec.Struct, rename="pascal"):
    """Docker's Info. Go writes every field, so this struct omits nothing.

    The capability booleans default to true: when they are false and Warnings
    is empty, the CLI prints a legacy warning for each."""

    id: str = msgspec.field(default="", name="ID")
    containers: int = 0
    containers_running: int = 0
    containers_paused: int = 0
    containers_stopped: int = 0
    images: int = 0
    driver: str = "overlayfs"
    # Pairs, or []: the CLI indexes each entry's two elements.
    driver_status: list[tuple[str, str]] = msgspec.field(default_factory=list)
    plugins: PluginsInfo = msgspec.field(default_factory=PluginsInfo)
    memory_limit: bool = True
    swap_limit: bool = True
    kernel_memory: bool = True
    kernel_memory_tcp: bool = msgspec.field(default=True, name="KernelMemoryTCP")
    cpu_cfs_period: bool = msgspec.field(default=True, name="CpuCfsPeriod")
    cpu_cfs_quota: bool = msgspec.field(default=True, name="CpuCfsQuota")
    cpu_shares: bool = msgspec.field(default=True, name="CPUShares")
    cpu_set: bool = msgspec.field(default=True, name="CPUSet")
    pids_limit: bool = True
    ipv4_forwarding: bool = msgspec.field(default=True, name="IPv4Forwarding")
    bridge_nf_iptables: bool = True
    bridge_nf_ip6tables: bool = msgspec.field(default=True, name="BridgeNfIp6tables")
    debug: bool = False
    n_fd: int = msgspec.field(default=0, name="NFd")
    oom_kill_disable: bool = True
    n_goroutines: int = msgspec.field(default=0, name="NGoroutines")
    system_time: str = ""
    logging_driver: str = "json-file"
    cgroup_driver: str = "cgroupfs"
    cgroup_version: str = "2"
    n_events_listener: int = msgspec.field(default=0, name="NEventsListener")
    kernel_version: str = ""
    operating_system: str = ""
    os_version: str = msgspec.field(default="", name="OSVersion")
    os_type: str = msgspec.field(default="linux", name="OSType")
    architecture: str = ""
    index_server_address: str = "https://index.docker.io/v1/"
    registry_config: dict[str, object] | None = None
    ncpu: int = msgspec.field(default=0, name="NCPU")
    mem_total: int = 0
    docker_root_dir: str = ""
    http_proxy: str = msgspec.field(default="", name="HttpProxy")
    https_proxy: str = msgspec.field(default="", name="HttpsProxy")
    no_proxy: str = ""
    name: str = ""
    labels: list[str] = msgspec.field(default_factory=list)
    experimental_build: bool = False
    server_version: str = ENGINE_VERSION
    runtimes: dict[str, RuntimeInfo] = msgspec.field(default_factory=_runtimes)
    default_runtime: str = "runc"
    swarm: SwarmInfo = msgspec.field(default_factory=SwarmInfo)
    live_restore_enabled: bool = False
    isolation: str = ""
    init_binary: str = ""
    containerd_commit: Commit = msgspec.field(default_factory=Commit)
    runc_commit: Commit = msgspec.field(default_factory=Commit)
    init_commit: Commit = msgspec.field(default_factory=Commit)
    # Entries look like "name=seccomp,profile=default".
    security_options: list[str] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)


class PlatformName(Obj):
    name: str = always("")


class ComponentVersion(Obj):
    name: str = always("Engine")
    version: str = always("")
    details: dict[str, str] = msgspec.field(default_factory=dict)


class SystemVersion(Obj):
    """docker-py's version negotiation reads ApiVersion from GET /version."""

    platform: PlatformName = always_new(PlatformName)
    components: list[ComponentVersion] = msgspec.field(default_factory=list)
    version: str = always(ENGINE_VERSION)
    api_version: str = always(API_VERSION)
    min_api_version: str = always(MIN_API_VERSION, name="MinAPIVersion")
    git_commit: str = always("")
    go_version: str = always("")
    os: str = always("linux")
    arch: str = always("")
    kernel_version: str = ""
    experimental: bool = False
    build_time: str = ""


class EventActor(Obj):
    id: str = always("", name="ID")
    attributes: dict[str, str] = always_new(dict)


class SystemEvent(msgspec.Struct, omit_defaults=True):
    """One line of /events. Type is service, node, network, secret or config;
    Action is create, update or remove. Go spells the last three in lowerCamel."""

    type: str = always("", name="Type")
    action: str = always("", name="Action")
    actor: EventActor = always_new(EventActor, name="Actor")
    scope: str = always("swarm", name="scope")
    time: int = 0  # unix seconds
    time_nano: int = msgspec.field(default=0, name="timeNano")
