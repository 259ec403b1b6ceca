"""Decoding what docker CLI, docker-py and Terraform send, and encoding with
the exact Go key spellings (docker-api.md §1, §3, §4)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.codec import decode, encode, from_builtins
from api.errors import InvalidArgument
from api.objects import (
    ContainerSpec,
    Limits,
    Network,
    NetworkCreateRequest,
    Node,
    NodeSpec,
    ResourceRequirements,
    Secret,
    SecretSpec,
    Service,
    ServiceCreateResponse,
    ServiceSpec,
    SwarmSpec,
    SystemEvent,
    SystemInfo,
    SystemVersion,
    Task,
    TaskSpec,
    TaskStatus,
    Volume,
)

# `docker service create --replicas 3 --name web img` (docker-api.md §4).
CLI_CREATE_BODY = (
    b'{"Name":"web","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"img:latest",'
    b'"Init":false,"DNSConfig":{}},"Resources":{"Limits":{},"Reservations":{}},'
    b'"Placement":{},"ForceUpdate":0},"Mode":{"Replicated":{"Replicas":3}},'
    b'"EndpointSpec":{"Mode":"vip"}}'
)

# docker-py: ServiceMode("replicated") is keyed "replicated"; old versions send
# null for unset lists; hand-written bodies use any case.
DOCKER_PY_BODY = json.dumps(
    {
        "name": "web",
        "labels": {"Team": "a"},
        "taskTemplate": {
            "containerSpec": {"image": "nginx:1", "command": None, "args": None, "env": ["A=1"]},
            "restartPolicy": {"condition": "on-failure", "delay": 0, "maxAttempts": 3},
            "placement": {"constraints": ["node.role==manager"]},
            "resources": {"limits": {"nanocpus": 500_000_000, "memorybytes": 1 << 26}},
        },
        "mode": {"replicated": {"replicas": 2}},
        "endpointSpec": {"ports": [{"protocol": "tcp", "publishedPort": 8080, "targetPort": 80}]},
    }
).encode()


def as_json(obj: object) -> Any:
    return json.loads(encode(obj))


def test_cli_create_body_round_trips_exactly() -> None:
    spec = decode(CLI_CREATE_BODY, ServiceSpec)
    assert spec.name == "web"
    assert spec.mode.replicated is not None and spec.mode.replicated.replicas == 3
    container = spec.task_template.container_spec
    assert container is not None and container.image == "img:latest"
    assert container.init is False  # sent, so kept (None would be omitted)
    assert encode(spec) == CLI_CREATE_BODY


def test_docker_py_body_with_lowercase_keys_and_nulls() -> None:
    spec = decode(DOCKER_PY_BODY, ServiceSpec)
    assert spec.labels == {"Team": "a"}  # map keys are data: case kept
    assert spec.mode.replicated is not None and spec.mode.replicated.replicas == 2
    container = spec.task_template.container_spec
    assert container == ContainerSpec(image="nginx:1", env=["A=1"])
    assert spec.task_template.restart_policy is not None
    assert spec.task_template.restart_policy.max_attempts == 3
    assert spec.task_template.resources == ResourceRequirements(
        limits=Limits(nano_cpus=500_000_000, memory_bytes=1 << 26)
    )
    assert spec.endpoint_spec is not None
    assert spec.endpoint_spec.ports[0].published_port == 8080
    out = as_json(spec)
    assert out["Mode"] == {"Replicated": {"Replicas": 2}}
    assert out["TaskTemplate"]["Resources"]["Limits"] == {
        "NanoCPUs": 500_000_000,
        "MemoryBytes": 1 << 26,
    }


def test_unknown_keys_are_ignored_and_swagger_spellings_match() -> None:
    spec = decode(
        b'{"Name":"x","Bogus":1,"TaskTemplate":{"ContainerSpec":{"Image":"i",'
        b'"HealthCheck":{"Test":["CMD","true"],"Interval":1000000000}}}}',
        ServiceSpec,
    )
    container = spec.task_template.container_spec
    assert container is not None and container.healthcheck is not None
    assert container.healthcheck.test == ["CMD", "true"]
    assert as_json(container)["Healthcheck"]["Interval"] == 1_000_000_000


def test_docker_py_job_modes_and_global() -> None:
    spec = decode(b'{"Mode":{"ReplicatedJob":{"MaxConcurrent":2}}}', ServiceSpec)
    assert spec.mode.kind == "replicated-job"
    assert decode(b'{"mode":{"global":{}}}', ServiceSpec).mode.kind == "global"
    assert as_json(decode(b'{"mode":{"global":{}}}', ServiceSpec))["Mode"] == {"Global": {}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"Mode":{"Replicated":{"Replicas":"3"}}}',
            "invalid JSON: Mode.Replicated.Replicas: expected int | null, got str",
        ),
        (
            b'{"TaskTemplate":{"ContainerSpec":{"Mounts":[{"Type":"bind"}]}}}',
            "invalid JSON: TaskTemplate.ContainerSpec.Mounts[0]: "
            "object missing required field Target",
        ),
        (b'{"Labels":{"a":1}}', "invalid JSON: Labels[...]: expected str, got int"),
        (b"[]", "invalid JSON: expected object, got array"),
        (b"", "got EOF while reading request body"),
        (b'{"Name":', "invalid JSON: Input data was truncated"),
    ],
)
def test_bad_bodies_are_400_with_one_line_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode(body, ServiceSpec)
    assert info.value.status == 400
    assert info.value.message == message
    assert "\n" not in info.value.message


def test_go_rejects_fractional_numbers_for_integers_so_do_we() -> None:
    with pytest.raises(InvalidArgument, match=r"Mode\.Replicated\.Replicas"):
        decode(b'{"Mode":{"Replicated":{"Replicas":1.5}}}', ServiceSpec)


def test_encode_uses_go_spellings() -> None:
    task = Task(
        id="t1",
        service_id="s1",
        node_id="n1",
        slot=1,
        spec=TaskSpec(container_spec=ContainerSpec(image="i", tty=True)),
        status=TaskStatus(state="running"),
        desired_state="running",
    )
    out = as_json(task)
    assert out["ID"] == "t1" and out["ServiceID"] == "s1" and out["NodeID"] == "n1"
    assert out["Labels"] == {}  # always emitted
    assert out["Spec"]["ContainerSpec"] == {"Image": "i", "TTY": True}
    assert "Name" not in out and "NetworksAttachments" not in out and "JobIteration" not in out
    assert out["Status"] == {
        "Timestamp": "0001-01-01T00:00:00Z",
        "State": "running",
        "PortStatus": {},
    }
    network = as_json(Network(id="n", name="net"))
    assert network["Id"] == "n" and "ID" not in network
    assert network["EnableIPv6"] is False and network["IPAM"]["Config"] == []
    assert as_json(ServiceCreateResponse(id="x")) == {"ID": "x"}


def test_labels_are_always_emitted_and_empty_optionals_are_not() -> None:
    for obj in (ServiceSpec(), NodeSpec(), SecretSpec(), SwarmSpec(), Volume(), Network()):
        assert as_json(obj)["Labels"] == {}, type(obj).__name__
    service = as_json(Service(id="s"))
    assert set(service) == {"ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "Endpoint"}
    assert service["Spec"] == {"Labels": {}, "TaskTemplate": {"ForceUpdate": 0}, "Mode": {}}
    assert service["Version"] == {}  # Go's Index is omitempty
    assert service["Endpoint"] == {"Spec": {}}


def test_map_keys_are_sorted_like_go() -> None:
    assert encode(NodeSpec(labels={"b": "1", "a": "2"})) == b'{"Labels":{"a":"2","b":"1"}}'


def test_secret_data_is_base64_and_inspect_drops_it() -> None:
    spec = decode(b'{"Name":"pw","Data":"aHVudGVyMg=="}', SecretSpec)
    assert spec.data == b"hunter2"
    assert as_json(spec)["Data"] == "aHVudGVyMg=="
    shown = as_json(Secret(id="s", spec=spec).without_data())
    assert "Data" not in shown["Spec"]
    assert shown["Spec"] == {"Name": "pw", "Labels": {}}


def test_go_client_objects_round_trip() -> None:
    node_json = {
        "ID": "n1",
        "Version": {"Index": 7},
        "CreatedAt": "2024-01-01T00:00:00.5Z",
        "UpdatedAt": "2024-01-01T00:00:01Z",
        "Spec": {"Labels": {"zone": "a"}, "Role": "manager", "Availability": "active"},
        "Description": {
            "Hostname": "h1",
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": 4000000000, "MemoryBytes": 8589934592},
            "Engine": {"EngineVersion": "20.10.24"},
            "TLSInfo": {"TrustRoot": "pem", "CertIssuerSubject": "c3ViamVjdA=="},
        },
        "Status": {"State": "ready", "Addr": "198.18.0.2"},
        "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": "198.18.0.2:2377"},
    }
    node = from_builtins(node_json, Node)
    assert node.version.index == 7
    assert node.description.tls_info.cert_issuer_subject == b"subject"
    assert as_json(node) == node_json


def test_list_bodies_and_create_requests() -> None:
    tasks = decode(b'[{"ID":"a","Slot":2},{"id":"b","DesiredState":"shutdown"}]', list[Task])
    assert [(t.id, t.slot, t.desired_state) for t in tasks] == [("a", 2, ""), ("b", 0, "shutdown")]
    req = decode(
        b'{"Name":"n","Driver":"overlay","Attachable":true,'
        b'"IPAM":{"Config":[{"Subnet":"10.1.0.0/24","IPRange":"10.1.0.0/25"}]}}',
        NetworkCreateRequest,
    )
    assert req.ipam is not None and req.ipam.config[0].ip_range == "10.1.0.0/25"


def test_system_objects_keep_go_names() -> None:
    info = as_json(SystemInfo(ncpu=4, mem_total=1 << 30))
    assert info["NCPU"] == 4 and info["MemTotal"] == 1 << 30 and info["OSType"] == "linux"
    assert info["CpuCfsPeriod"] is True and info["DriverStatus"] == []
    assert info["Swarm"]["LocalNodeState"] == "inactive" and "Cluster" not in info["Swarm"]
    version = as_json(SystemVersion())
    assert version["ApiVersion"] == "1.41" and version["MinAPIVersion"] == "1.12"
    event = as_json(SystemEvent(type="service", action="create", time=1, time_nano=10**9))
    assert event == {
        "Type": "service",
        "Action": "create",
        "Actor": {"ID": "", "Attributes": {}},
        "scope": "swarm",
        "time": 1,
        "timeNano": 10**9,
    }
