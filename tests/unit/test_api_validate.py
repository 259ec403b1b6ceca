"""Spec normalisation, defaults and validation messages, as Docker answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from api.codec import decode, encode
from api.errors import ApiError, Forbidden, InvalidArgument, NotImplemented_
from api.objects import (
    ConfigSpec,
    ContainerSpec,
    Driver,
    EndpointSpec,
    ExternalCA,
    FileTarget,
    GlobalService,
    HealthConfig,
    Limits,
    Mount,
    NetworkCreateRequest,
    NodeSpec,
    Placement,
    PortConfig,
    ReplicatedJob,
    ReplicatedService,
    ResourceRequirements,
    RestartPolicy,
    SecretReference,
    SecretSpec,
    ServiceMode,
    ServiceSpec,
    SwarmSpec,
    TaskSpec,
    UpdateConfig,
)
from api.validate import (
    insert_defaults,
    normalize_node_spec,
    normalize_service_spec,
    normalize_swarm_spec,
    validate_config_spec,
    validate_network_create,
    validate_secret_spec,
)

RPC = "rpc error: code = InvalidArgument desc = "
S = 1_000_000_000


def spec(**kw: object) -> ServiceSpec:
    base = ServiceSpec(name="web", task_template=TaskSpec(container_spec=ContainerSpec(image="i")))
    for key, value in kw.items():
        setattr(base, key, value)
    return base


def container(**kw: object) -> ServiceSpec:
    """A spec whose ContainerSpec (image "i") has `kw` set."""
    c = ContainerSpec(image="i")
    for key, value in kw.items():
        setattr(c, key, value)
    return spec(task_template=TaskSpec(container_spec=c))


def test_empty_mode_and_replicated_without_replicas_become_one_replica() -> None:
    for mode in (ServiceMode(), ServiceMode(replicated=ReplicatedService())):
        out = normalize_service_spec(spec(mode=mode))
        assert out.mode == ServiceMode(replicated=ReplicatedService(replicas=1))
    zero = normalize_service_spec(spec(mode=ServiceMode(replicated=ReplicatedService(replicas=0))))
    assert zero.mode.replicated == ReplicatedService(replicas=0)
    glob = normalize_service_spec(spec(mode=ServiceMode(global_=GlobalService())))
    assert glob.mode.kind == "global" and glob.mode.replicated is None


def test_job_defaults() -> None:
    out = normalize_service_spec(spec(mode=ServiceMode(replicated_job=ReplicatedJob())))
    assert out.mode.replicated_job == ReplicatedJob(max_concurrent=1, total_completions=1)
    out = normalize_service_spec(
        spec(mode=ServiceMode(replicated_job=ReplicatedJob(max_concurrent=4)))
    )
    assert out.mode.replicated_job == ReplicatedJob(max_concurrent=4, total_completions=4)


def test_normalisation_spells_enums_as_docker_serves_them_and_keeps_the_input() -> None:
    original = spec(
        task_template=TaskSpec(
            container_spec=ContainerSpec(image="i", mounts=[Mount(target="/d", type="BIND")]),
            restart_policy=RestartPolicy(),
            networks=[],
        ),
        update_config=UpdateConfig(parallelism=2),
        endpoint_spec=EndpointSpec(ports=[PortConfig(target_port=80, protocol="UDP")]),
    )
    before = encode(original)
    out = normalize_service_spec(original)
    assert encode(original) == before  # pure
    assert out.task_template.runtime == "container"
    assert out.task_template.restart_policy == RestartPolicy(condition="any", max_attempts=0)
    assert out.update_config == UpdateConfig(
        parallelism=2, failure_action="pause", order="stop-first"
    )
    assert out.endpoint_spec == EndpointSpec(
        mode="vip", ports=[PortConfig(target_port=80, protocol="udp", publish_mode="ingress")]
    )
    assert out.task_template.container_spec is not None
    assert out.task_template.container_spec.mounts[0].type == "bind"


def test_network_targets_are_kept_as_given() -> None:
    body = b'{"TaskTemplate":{"ContainerSpec":{"Image":"i"},"Networks":[{"Target":"backend"}]}}'
    out = normalize_service_spec(decode(body, ServiceSpec))
    assert [n.target for n in out.task_template.networks] == ["backend"]


BAD: list[tuple[Callable[[], ServiceSpec], str]] = [
    (
        lambda: spec(mode=ServiceMode(replicated=ReplicatedService(replicas=-1))),
        RPC + "Number of replicas must be non-negative",
    ),
    (
        lambda: spec(
            mode=ServiceMode(replicated=ReplicatedService(replicas=1), global_=GlobalService())
        ),
        "must specify only one service mode",
    ),
    (lambda: container(image=""), RPC + "ContainerSpec: image reference must be provided"),
    (
        lambda: container(image="Not A Ref"),
        RPC + 'ContainerSpec: "Not A Ref" is not a valid repository/tag',
    ),
    (lambda: spec(task_template=TaskSpec()), "mismatched Runtime and *Spec fields"),
    (
        lambda: spec(
            endpoint_spec=EndpointSpec(ports=[PortConfig(target_port=1, protocol="icmp")])
        ),
        'invalid Protocol: "icmp"',
    ),
    (
        lambda: spec(
            endpoint_spec=EndpointSpec(ports=[PortConfig(target_port=1, publish_mode="mesh")])
        ),
        'invalid PublishMode: "mesh"',
    ),
    (lambda: spec(endpoint_spec=EndpointSpec(mode="rr")), 'invalid resolution mode: "rr"'),
    (
        lambda: spec(
            endpoint_spec=EndpointSpec(
                mode="dnsrr", ports=[PortConfig(target_port=80, published_port=80)]
            )
        ),
        RPC + "EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
    ),
    (
        lambda: spec(
            endpoint_spec=EndpointSpec(
                ports=[
                    PortConfig(target_port=80, published_port=8080),
                    PortConfig(target_port=81, published_port=8080),
                ]
            )
        ),
        RPC + "EndpointSpec: duplicate published ports provided",
    ),
    (
        lambda: spec(
            task_template=TaskSpec(
                container_spec=ContainerSpec(image="i"),
                restart_policy=RestartPolicy(condition="always"),
            )
        ),
        'invalid RestartCondition: "always"',
    ),
    (
        lambda: spec(
            task_template=TaskSpec(
                container_spec=ContainerSpec(image="i"), restart_policy=RestartPolicy(delay=-1)
            )
        ),
        RPC + "TaskSpec: restart-delay cannot be negative",
    ),
    (
        lambda: spec(update_config=UpdateConfig(failure_action="explode")),
        "unrecognized update failure action explode",
    ),
    (
        lambda: spec(rollback_config=UpdateConfig(failure_action="rollback")),
        "unrecognized rollback failure action rollback",
    ),
    (lambda: spec(update_config=UpdateConfig(order="random")), "unrecognized update order random"),
    (
        lambda: spec(update_config=UpdateConfig(max_failure_ratio=1.5)),
        RPC + "TaskSpec: update-maxfailureratio cannot be less than 0 or bigger than 1",
    ),
    (
        lambda: spec(
            task_template=TaskSpec(
                container_spec=ContainerSpec(image="i"),
                placement=Placement(constraints=["node.role=manager"]),
            )
        ),
        RPC + "constraint expected one operator from ==, !=",
    ),
    (
        lambda: spec(
            task_template=TaskSpec(
                container_spec=ContainerSpec(image="i"),
                placement=Placement(constraints=["node.role==manager", "!x==y"]),
            )
        ),
        RPC + "key '!x' is invalid",
    ),
    (
        lambda: spec(
            task_template=TaskSpec(
                container_spec=ContainerSpec(image="i"),
                resources=ResourceRequirements(limits=Limits(nano_cpus=1000)),
            )
        ),
        RPC + "invalid cpu value 1e-06: Must be at least 0.001",
    ),
    (
        lambda: spec(
            task_template=TaskSpec(
                container_spec=ContainerSpec(image="i"),
                resources=ResourceRequirements(limits=Limits(memory_bytes=1024)),
            )
        ),
        RPC + "invalid memory value 1024: Must be at least 4MiB",
    ),
    (
        lambda: container(mounts=[Mount(target="/a"), Mount(target="/a", type="tmpfs")]),
        RPC + "ContainerSpec: duplicate mount point: /a",
    ),
    (lambda: container(mounts=[Mount(target="/a", type="nfs")]), 'invalid MountType: "nfs"'),
    (
        lambda: container(healthcheck=HealthConfig(interval=10)),
        RPC + "ContainerSpec: Interval in HealthConfig cannot be less than 1ms",
    ),
    (
        lambda: container(secrets=[SecretReference(secret_name="pw", file=FileTarget(name="pw"))]),
        RPC + "malformed secret reference",
    ),
    (
        lambda: container(
            secrets=[
                SecretReference(secret_id="1", secret_name="a", file=FileTarget(name="f")),
                SecretReference(secret_id="2", secret_name="b", file=FileTarget(name="f")),
            ]
        ),
        RPC + "secret references 'a' and 'b' have a conflicting target: 'f'",
    ),
    (lambda: spec(name="-web"), RPC + "name must be valid as a DNS name component"),
    (lambda: spec(name="a" * 64), RPC + "name must be 63 characters or fewer"),
]


@pytest.mark.parametrize(("make", "message"), BAD)
def test_invalid_service_specs_are_400_with_dockers_message(
    make: Callable[[], ServiceSpec], message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        normalize_service_spec(make())
    assert info.value.status == 400
    assert info.value.message == message


def test_plugin_runtime_is_not_implemented() -> None:
    with pytest.raises(NotImplemented_) as info:
        normalize_service_spec(spec(task_template=TaskSpec(runtime="plugin")))
    assert info.value.status == 501


@pytest.mark.parametrize(
    "image",
    [
        "img",
        "img:latest",
        "library/img:1.2",
        "registry.lab:5000/team/app:v1",
        "localhost/app",
        "Registry.Example.com/app@sha256:" + "a" * 64,
    ],
)
def test_valid_images_and_constraints_pass(image: str) -> None:
    normalize_service_spec(
        spec(
            task_template=TaskSpec(
                container_spec=ContainerSpec(image=image),
                placement=Placement(
                    constraints=["node.role == manager", "node.labels.zone!=eu-1", "node.id==abc"]
                ),
            )
        )
    )


def test_insert_defaults_fills_what_swarm_would() -> None:
    out = insert_defaults(normalize_service_spec(spec()))
    c = out.task_template.container_spec
    assert c is not None and c.stop_grace_period == 10 * S
    assert encode(c.dns_config) == b"{}"
    assert encode(out.task_template.resources) == b"{}"
    assert encode(out.task_template.placement) == b"{}"
    assert out.task_template.restart_policy == RestartPolicy(
        condition="any", delay=5 * S, max_attempts=0
    )
    expected = UpdateConfig(
        parallelism=1, failure_action="pause", monitor=5 * S, order="stop-first"
    )
    assert out.update_config == expected and out.rollback_config == expected


def test_insert_defaults_keeps_what_the_user_set() -> None:
    mine = spec(
        task_template=TaskSpec(
            container_spec=ContainerSpec(image="i", stop_grace_period=S),
            restart_policy=RestartPolicy(condition="none", delay=0),
        ),
        update_config=UpdateConfig(parallelism=3, monitor=S, failure_action="rollback"),
    )
    out = insert_defaults(normalize_service_spec(mine))
    assert out.task_template.container_spec is not None
    assert out.task_template.container_spec.stop_grace_period == S
    assert out.task_template.restart_policy == RestartPolicy(
        condition="none", delay=0, max_attempts=0
    )
    assert out.update_config is not None
    assert (out.update_config.parallelism, out.update_config.monitor) == (3, S)
    assert mine.rollback_config is None  # the input is untouched


def test_swarm_spec_defaults() -> None:
    out = normalize_swarm_spec(SwarmSpec())
    assert out.name == "default"
    assert out.orchestration.task_history_retention_limit == 5
    raft = out.raft
    assert (raft.snapshot_interval, raft.keep_old_snapshots) == (10_000, None)
    assert (raft.log_entries_for_slow_followers, raft.election_tick, raft.heartbeat_tick) == (
        500,
        10,
        1,
    )
    assert out.dispatcher.heartbeat_period == 5 * S
    assert out.ca_config.node_cert_expiry == 2160 * 3600 * S
    kept = normalize_swarm_spec(
        decode(b'{"Orchestration":{"TaskHistoryRetentionLimit":0}}', SwarmSpec)
    )
    assert kept.orchestration.task_history_retention_limit == 0


def test_swarm_spec_errors() -> None:
    with pytest.raises(InvalidArgument, match="minimum certificate expiry time is: 1h0m0s"):
        normalize_swarm_spec(decode(b'{"CAConfig":{"NodeCertExpiry":60000000000}}', SwarmSpec))
    bad_ca = SwarmSpec()
    bad_ca.ca_config.external_cas = [ExternalCA(protocol="acme")]
    with pytest.raises(InvalidArgument, match='invalid protocol: "acme"'):
        normalize_swarm_spec(bad_ca)


def test_node_spec() -> None:
    out = normalize_node_spec(NodeSpec(role="Manager", availability="DRAIN"))
    assert (out.role, out.availability) == ("manager", "drain")
    with pytest.raises(InvalidArgument, match='invalid Role: "boss"'):
        normalize_node_spec(NodeSpec(role="boss", availability="active"))
    with pytest.raises(InvalidArgument, match='invalid Availability: ""'):
        normalize_node_spec(NodeSpec(role="worker"))


def test_secret_config_and_network_checks() -> None:
    validate_secret_spec(SecretSpec(name="db.password", data=b"x"))
    validate_secret_spec(SecretSpec(name="ext", driver=Driver(name="vault")))
    validate_config_spec(ConfigSpec(name="cfg", data=b"x"))
    with pytest.raises(InvalidArgument, match="secret data must be larger than 0"):
        validate_secret_spec(SecretSpec(name="empty"))
    with pytest.raises(InvalidArgument, match=r"invalid name, only 64 \[a-zA-Z0-9-_.\]"):
        validate_config_spec(ConfigSpec(name="-bad", data=b"x"))
    with pytest.raises(ApiError) as info:
        validate_network_create(NetworkCreateRequest(name="host"))
    assert isinstance(info.value, Forbidden) and info.value.status == 403
    assert info.value.message == "operation is not permitted on predefined host network"
