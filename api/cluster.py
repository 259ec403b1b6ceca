"""The swarm itself: its spec (with Docker's defaults), the cluster object,
and the init/join/unlock requests (docker-api.md §2, §3)."""

from __future__ import annotations

import msgspec

from api.base import Annotations, Driver, Meta, Obj, TLSInfo, always, always_new

SECOND = 1_000_000_000
HOUR = 3600 * SECOND

# What an unset SwarmSpec field becomes (validate.normalize_swarm_spec).
DEFAULT_SWARM_NAME = "default"
DEFAULT_TASK_HISTORY_RETENTION_LIMIT = 5
DEFAULT_SNAPSHOT_INTERVAL = 10_000
DEFAULT_LOG_ENTRIES_FOR_SLOW_FOLLOWERS = 500
DEFAULT_ELECTION_TICK = 10
DEFAULT_HEARTBEAT_TICK = 1
DEFAULT_DISPATCHER_HEARTBEAT = 5 * SECOND
DEFAULT_NODE_CERT_EXPIRY = 2160 * HOUR
MIN_NODE_CERT_EXPIRY = 1 * HOUR
DEFAULT_ADDR_POOL = ("10.0.0.0/8",)
DEFAULT_SUBNET_SIZE = 24
DEFAULT_DATA_PATH_PORT = 4789


class OrchestrationConfig(Obj):
    # None: unset (filled with 5); 0 is a real value (keep no history).
    task_history_retention_limit: int | None = None


class RaftConfig(Obj):
    snapshot_interval: int = 0
    keep_old_snapshots: int | None = None
    log_entries_for_slow_followers: int = 0
    election_tick: int = always(0)
    heartbeat_tick: int = always(0)


class DispatcherConfig(Obj):
    heartbeat_period: int = 0  # nanoseconds


class ExternalCA(Obj):
    protocol: str = always("cfssl")
    url: str = always("", name="URL")
    options: dict[str, str] = msgspec.field(default_factory=dict)
    ca_cert: str = always("", name="CACert")


class CAConfig(Obj):
    node_cert_expiry: int = 0  # nanoseconds
    external_cas: list[ExternalCA] = msgspec.field(default_factory=list, name="ExternalCAs")
    signing_ca_cert: str = msgspec.field(default="", name="SigningCACert")
    signing_ca_key: str = msgspec.field(default="", name="SigningCAKey")
    force_rotate: int = 0


class EncryptionConfig(Obj):
    auto_lock_managers: bool = always(False)


class TaskDefaults(Obj):
    log_driver: Driver | None = None


class SwarmSpec(Annotations):
    orchestration: OrchestrationConfig = always_new(OrchestrationConfig)
    raft: RaftConfig = always_new(RaftConfig)
    dispatcher: DispatcherConfig = always_new(DispatcherConfig)
    ca_config: CAConfig = always_new(CAConfig, name="CAConfig")
    task_defaults: TaskDefaults = always_new(TaskDefaults)
    encryption_config: EncryptionConfig = always_new(EncryptionConfig)


class ClusterInfo(Meta):
    spec: SwarmSpec = always_new(SwarmSpec)
    tls_info: TLSInfo = always_new(TLSInfo, name="TLSInfo")
    root_rotation_in_progress: bool = always(False)
    default_addr_pool: list[str] = always_new(lambda: list(DEFAULT_ADDR_POOL))
    subnet_size: int = always(DEFAULT_SUBNET_SIZE)
    data_path_port: int = always(DEFAULT_DATA_PATH_PORT)


class JoinTokens(Obj):
    """`SWMTKN-1-<CA digest>-<secret>`; worker and manager tokens differ."""

    worker: str = always("")
    manager: str = always("")


class Swarm(ClusterInfo):
    join_tokens: JoinTokens = always_new(JoinTokens)


class InitRequest(Obj):
    listen_addr: str = always("0.0.0.0:2377")
    advertise_addr: str = ""
    data_path_addr: str = ""
    data_path_port: int = 0
    default_addr_pool: list[str] = msgspec.field(default_factory=list)
    subnet_size: int = 0
    force_new_cluster: bool = False
    spec: SwarmSpec = always_new(SwarmSpec)
    auto_lock_managers: bool = False
    availability: str = ""


class JoinRequest(Obj):
    listen_addr: str = always("0.0.0.0:2377")
    advertise_addr: str = ""
    data_path_addr: str = ""
    remote_addrs: list[str] = msgspec.field(default_factory=list)
    join_token: str = ""
    availability: str = ""


class UnlockRequest(Obj):
    unlock_key: str = ""


class UnlockKeyResponse(Obj):
    unlock_key: str = always("")
