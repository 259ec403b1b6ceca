"""`service create/update` flags → ServiceSpec JSON, and the convergence view."""

from __future__ import annotations

import click
import pytest

from clusterctl.progress import Line, Obj, snapshot
from clusterctl.service_flags import create_spec, update_spec
from clusterctl.service_lists import Lookup
from clusterctl.service_values import (
    parse_bytes,
    parse_cpus,
    parse_duration,
    parse_env_file,
    parse_file_ref,
    parse_mount,
    parse_publish,
    with_tag,
)

NO_IDS = Lookup()


def test_durations_sizes_and_cpus_read_as_docker_reads_them() -> None:
    assert parse_duration("1m30s", "d") == 90 * 10**9
    assert parse_duration("500ms", "d") == 5 * 10**8
    assert parse_duration("1.5h", "d") == 5400 * 10**9
    assert parse_duration("0", "d") == 0
    assert parse_bytes("512M", "m") == 512 << 20
    assert parse_bytes("1g", "m") == 1 << 30
    assert parse_bytes("1.5GiB", "m") == 3 << 29
    assert parse_bytes("1024", "m") == 1024
    assert parse_cpus("0.5", "c") == 500_000_000
    for parse, text in ((parse_duration, "xyz"), (parse_duration, "10"), (parse_bytes, "12XB")):
        with pytest.raises(click.BadParameter):
            parse(text, "flag")
    with pytest.raises(click.BadParameter) as raised:
        parse_cpus("lots", "limit-cpu")
    assert raised.value.format_message() == (
        "Invalid value for --limit-cpu: invalid CPU count 'lots': use e.g. 0.5 or 2"
    )


def test_publish_short_long_and_range_syntax() -> None:
    assert parse_publish("8080:80") == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
    ]
    assert parse_publish("53/udp")[0] | {} == {
        "Protocol": "udp",
        "TargetPort": 53,
        "PublishedPort": 0,
        "PublishMode": "ingress",
    }
    assert [p["PublishedPort"] for p in parse_publish("8080-8081:80-81")] == [8080, 8081]
    assert parse_publish("published=8080,target=80,protocol=udp,mode=host") == [
        {"Protocol": "udp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}
    ]
    for bad in ("80:80:80", "x:80", "8080:80/icmp", "published=80", "target=80,colour=red"):
        with pytest.raises(click.BadParameter):
            parse_publish(bad)


def test_mounts_of_each_type() -> None:
    assert parse_mount("type=bind,source=/srv,target=/data,readonly") == {
        "Type": "bind",
        "Source": "/srv",
        "Target": "/data",
        "ReadOnly": True,
    }
    volume = parse_mount("source=db,target=/var/lib/db,volume-driver=local,volume-opt=o=bind")
    assert volume["Type"] == "volume"
    assert volume["VolumeOptions"] == {"DriverConfig": {"Name": "local", "Options": {"o": "bind"}}}
    tmpfs = parse_mount("type=tmpfs,target=/tmp,tmpfs-size=64M,tmpfs-mode=1777")
    assert tmpfs["TmpfsOptions"] == {"SizeBytes": 64 << 20, "Mode": 0o1777}
    for bad in (
        "type=bind,target=/x",
        "source=a",
        "type=tmpfs,source=a,target=/t",
        "target=/x,size=1",
    ):
        with pytest.raises(click.BadParameter):
            parse_mount(bad)
    with pytest.raises(click.BadParameter, match="volume options on a bind"):
        parse_mount("type=bind,source=/a,target=/b,volume-driver=x")


def test_secret_and_config_references() -> None:
    short = parse_file_ref("db-pass", "secret")
    assert short == {
        "Name": "db-pass",
        "File": {"Name": "db-pass", "UID": "0", "GID": "0", "Mode": 0o444},
    }
    long = parse_file_ref("source=db-pass,target=pw,uid=10,mode=0400", "secret")
    assert long == {"Name": "db-pass", "File": {"Name": "pw", "UID": "10", "GID": "0", "Mode": 256}}
    lookup = Lookup(secrets={"db-pass": "s1"}, configs={"site": "c1"})
    spec = create_spec("nginx", [], {"secret": ["db-pass"], "config": ["site"]}, lookup)
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Secrets"][0]["SecretID"] == "s1"
    assert container["Secrets"][0]["SecretName"] == "db-pass"
    assert container["Configs"][0] == {
        "File": {"Name": "site", "UID": "0", "GID": "0", "Mode": 0o444},
        "ConfigID": "c1",
        "ConfigName": "site",
    }
    with pytest.raises(click.ClickException, match="secret not found: other"):
        create_spec("nginx", [], {"secret": ["other"]}, lookup)


def test_env_file_lines() -> None:
    content = "# comment\n\nA=1\n  B=two words\nFROM_SHELL\nMISSING\n"
    assert parse_env_file(content, {"FROM_SHELL": "x"}) == ["A=1", "B=two words", "FROM_SHELL=x"]


def test_a_plain_create_is_what_the_docker_cli_sends() -> None:
    spec = create_spec("busybox", [], {"name": "web", "replicas": "3"}, NO_IDS)
    assert spec == {
        "Name": "web",
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox:latest", "Init": False, "DNSConfig": {}},
            "Resources": {"Limits": {}, "Reservations": {}},
            "Placement": {},
        },
        "Mode": {"Replicated": {"Replicas": 3}},
        "EndpointSpec": {"Mode": "vip"},
    }
    assert with_tag("localhost:5000/app") == "localhost:5000/app:latest"
    assert with_tag("app@sha256:ab") == "app@sha256:ab"


def test_create_flags_fill_the_spec() -> None:
    flags = {
        "mode": "global",
        "env": ["B=2"],
        "label": ["tier=web"],
        "publish": ["8080:80"],
        "constraint": ["node.role==worker"],
        "placement_pref": ["spread=node.labels.zone"],
        "replicas_max_per_node": "2",
        "limit_memory": "1G",
        "reserve_cpu": "0.25",
        "limit_pids": "100",
        "health_cmd": "curl -f localhost",
        "health_interval": "5s",
        "restart_condition": "on-failure",
        "update_parallelism": "2",
        "update_delay": "10s",
        "rollback_order": "start-first",
        "user": "app",
        "workdir": "/srv",
        "read_only": True,
        "init": True,
        "stop_grace_period": "30s",
        "cap_add": ["net_admin"],
        "sysctl": ["net.core.somaxconn=1024"],
        "endpoint_mode": "dnsrr",
    }
    spec = create_spec("nginx:1.27", ["-g", "daemon off;"], flags, NO_IDS, env_files=["A=1"])
    template = spec["TaskTemplate"]
    container = template["ContainerSpec"]
    assert spec["Mode"] == {"Global": {}}
    assert spec["Labels"] == {"tier": "web"}
    assert container["Args"] == ["-g", "daemon off;"]
    assert container["Env"] == ["A=1", "B=2"]
    assert container["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f localhost"],
        "Interval": 5 * 10**9,
    }
    assert container["CapabilityAdd"] == ["CAP_NET_ADMIN"]
    assert container["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert (container["User"], container["Dir"], container["ReadOnly"], container["Init"]) == (
        "app",
        "/srv",
        True,
        True,
    )
    assert container["StopGracePeriod"] == 30 * 10**9
    assert template["Placement"] == {
        "Constraints": ["node.role==worker"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
        "MaxReplicas": 2,
    }
    assert template["Resources"] == {
        "Limits": {"MemoryBytes": 1 << 30, "Pids": 100},
        "Reservations": {"NanoCPUs": 250_000_000},
    }
    assert template["RestartPolicy"] == {
        "Condition": "on-failure",
        "Delay": 5 * 10**9,
        "MaxAttempts": 0,
    }
    assert spec["UpdateConfig"]["Parallelism"] == 2
    assert spec["UpdateConfig"]["Delay"] == 10 * 10**9
    assert spec["UpdateConfig"]["FailureAction"] == "pause"  # docker's default for the rest
    assert spec["RollbackConfig"]["Order"] == "start-first"
    assert spec["EndpointSpec"] == {
        "Mode": "dnsrr",
        "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
        ],
    }


def test_bad_create_flags_are_one_line_errors() -> None:
    with pytest.raises(click.BadParameter, match="not a whole number of at least 0"):
        create_spec("x", [], {"replicas": "-1"}, NO_IDS)
    with pytest.raises(click.UsageError, match="does not apply"):
        create_spec("x", [], {"mode": "global", "replicas": "2"}, NO_IDS)
    with pytest.raises(click.BadParameter, match="invalid constraint"):
        create_spec("x", [], {"constraint": ["node.role=manager"]}, NO_IDS)
    with pytest.raises(click.UsageError, match="conflicts"):
        create_spec("x", [], {"no_healthcheck": True, "health_cmd": "true"}, NO_IDS)
    with pytest.raises(click.BadParameter, match="between 0 and 1"):
        create_spec("x", [], {"update_max_failure_ratio": "2"}, NO_IDS)


def test_update_changes_only_what_the_flags_say() -> None:
    flags = {
        "env": ["A=1", "B=2"],
        "label": ["keep=1", "drop=1"],
        "publish": ["8080:80", "53:53/udp"],
        "constraint": ["node.role==worker"],
        "mount": ["type=bind,source=/a,target=/a"],
        "network": ["front"],
    }
    lookup = Lookup(secrets={"s": "S1"}, networks={"front": "N1", "back": "N2"})
    current = create_spec("app:1", [], flags, lookup)
    current["TaskTemplate"]["Networks"] = [{"Target": "N1"}]  # the manager stores IDs
    current["TaskTemplate"]["ContainerSpec"]["Secrets"] = [lookup.reference("s", "secret")]
    changes = {
        "image": "app:2",
        "replicas": "4",
        "force": True,
        "args": "serve --port '80 80'",
        "env_add": ["A=10", "C=3"],
        "env_rm": ["B"],
        "label_add": ["new=1"],
        "label_rm": ["drop"],
        "publish_add": ["9090:90"],
        "publish_rm": ["53/udp"],
        "constraint_add": ["node.labels.zone==a"],
        "constraint_rm": ["node.role == worker"],
        "mount_add": ["type=tmpfs,target=/tmp"],
        "mount_rm": ["/a"],
        "network_add": ["back"],
        "network_rm": ["front"],
        "secret_rm": ["s"],
        "update_order": "start-first",
    }
    spec = update_spec(current, changes, lookup)
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Image"] == "app:2"
    assert container["Args"] == ["serve", "--port", "80 80"]
    assert container["Env"] == ["A=10", "C=3"]
    assert spec["Labels"] == {"keep": "1", "new": "1"}
    assert [(p["PublishedPort"], p["TargetPort"]) for p in spec["EndpointSpec"]["Ports"]] == [
        (8080, 80),
        (9090, 90),
    ]
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.zone==a"]
    assert container["Mounts"] == [{"Type": "tmpfs", "Target": "/tmp"}]
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "back"}]
    assert container["Secrets"] == []
    assert spec["TaskTemplate"]["ForceUpdate"] == 1
    assert spec["Mode"] == {"Replicated": {"Replicas": 4}}
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert current["TaskTemplate"]["ContainerSpec"]["Image"] == "app:1"  # not changed in place
    assert update_spec(spec, {}, lookup) == spec
    with pytest.raises(click.UsageError, match="replicated"):
        update_spec({"Mode": {"Global": {}}}, {"replicas": "2"}, lookup)


def _task(slot: int, state: str, desired: str = "running", err: str = "", node: str = "n1") -> Obj:
    status = {"State": state, "Err": err} if err else {"State": state}
    return {"Slot": slot, "NodeID": node, "DesiredState": desired, "Status": status}


def test_snapshot_counts_running_slots_and_shows_errors() -> None:
    service = {"Spec": {"Mode": {"Replicated": {"Replicas": 3}}}}
    nodes = [{"ID": "n1", "Status": {"State": "ready"}}, {"ID": "n2", "Status": {"State": "down"}}]
    tasks = [
        _task(1, "running"),
        _task(2, "preparing"),
        _task(2, "running", desired="shutdown"),  # the lower desired state wins the slot
        _task(3, "rejected", err="no suitable node"),
        _task(3, "running", node="n2"),  # on a node that is down
    ]
    shot = snapshot(service, tasks, nodes)
    assert (shot.done, shot.total, shot.converged) == (1, 3, False)
    assert [line.plain() for line in shot.lines] == [
        "1/3: running",
        "2/3: preparing",
        "3/3: no suitable node",
    ]
    assert Line("1/3", "running").rich().endswith("=>]")
    assert Line("2/3", "new").rich().startswith("2/3: new       [====>  ")
    assert snapshot(service, [_task(s, "running") for s in (1, 2, 3)], nodes).converged


def test_snapshot_of_global_services_and_jobs() -> None:
    nodes = [
        {"ID": "n1", "Description": {"Hostname": "alpha"}, "Status": {"State": "ready"}},
        {"ID": "n2", "Description": {"Hostname": "beta"}, "Status": {"State": "ready"}},
    ]
    service: Obj = {"Spec": {"Mode": {"Global": {}}}}
    shot = snapshot(service, [_task(0, "running", node="n2"), _task(0, "assigned")], nodes)
    assert [line.plain() for line in shot.lines] == ["alpha: assigned", "beta: running"]
    assert (shot.done, shot.total) == (1, 2)
    assert not snapshot(service, [], nodes).converged  # no task yet
    scaled_to_zero = {"Spec": {"Mode": {"Replicated": {"Replicas": 0}}}}
    assert snapshot(scaled_to_zero, [], nodes).converged
    job = {"Spec": {"Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 2}}}}
    shot = snapshot(job, [_task(1, "complete", desired="complete"), _task(2, "running")], nodes)
    assert (shot.done, shot.total, shot.job, shot.converged) == (1, 2, True, False)
