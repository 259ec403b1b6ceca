"""`clusterctl network|secret|config|volume ...` against a real manager API in
this process."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from tests.component.cli_cluster import InProcessCluster

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clusterctl_config")]


def ok(cluster: InProcessCluster, *args: str, input: str | None = None) -> str:
    done = cluster.clusterctl(*args, input=input)
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_networks_are_created_listed_inspected_and_removed(cluster: InProcessCluster) -> None:
    network_id = ok(
        cluster, "network", "create", "-d", "overlay", "--subnet", "10.30.0.0/24",
        "--gateway", "10.30.0.254", "--attachable", "--internal", "--label", "tier=back", "back",
    ).strip()  # fmt: skip
    assert len(network_id) == 25
    shown = json.loads(ok(cluster, "network", "inspect", network_id[:6]))
    assert shown[0]["Name"] == "back" and shown[0]["Attachable"] and shown[0]["Internal"]
    assert shown[0]["IPAM"]["Config"] == [{"Subnet": "10.30.0.0/24", "Gateway": "10.30.0.254"}]
    assert shown[0]["Labels"] == {"tier": "back"}
    listed = json.loads(ok(cluster, "network", "ls", "--format", "json"))
    assert {n["Name"] for n in listed} == {"back", "ingress"}
    assert network_id in ok(cluster, "network", "ls", "-q").split()
    table = ok(cluster, "network", "ls").splitlines()
    assert table[0].split()[:2] == ["NETWORK", "ID"]
    assert any(line.split()[:2] == [network_id[:12], "back"] for line in table)
    one_line_error(cluster.clusterctl("network", "create", "back"), "back already exists")
    one_line_error(
        cluster.clusterctl("network", "create", "--subnet", "10.30.0.0/24", "again"), "overlaps"
    )
    one_line_error(cluster.clusterctl("network", "create", "-d", "bridge", "x"), "'bridge'")
    one_line_error(cluster.clusterctl("network", "rm", "ingress"), "pre-defined network")
    one_line_error(cluster.clusterctl("network", "inspect", "nosuch"), "network nosuch not found")
    # Several at once: what exists is removed, each miss is one line, exit 1.
    done = cluster.clusterctl("network", "rm", "back", "nosuch")
    assert done.returncode == 1 and done.stdout.split() == ["back"]
    assert done.stderr.strip() == "error: network nosuch not found"
    assert cluster.view(lambda tx: tx.by_name("network", "back")) is None


def test_secrets_come_from_a_file_or_stdin_and_never_show(
    cluster: InProcessCluster, tmp_path: Path
) -> None:
    source = tmp_path / "password.txt"
    source.write_text("from-a-file")
    first = ok(cluster, "secret", "create", "--label", "app=db", "db_password", str(source))
    second = ok(cluster, "secret", "create", "api_key", "-", input="from-stdin").strip()
    shown = json.loads(ok(cluster, "secret", "inspect", first.strip()[:8], "api_key"))
    assert [s["Spec"]["Name"] for s in shown] == ["db_password", "api_key"]
    assert shown[0]["Spec"]["Labels"] == {"app": "db"}
    assert all("Data" not in s["Spec"] for s in shown)  # a secret's value is never shown
    listed = json.loads(ok(cluster, "secret", "ls", "--format", "json"))
    assert [s["Spec"]["Name"] for s in listed] == ["api_key", "db_password"]
    assert sorted(ok(cluster, "secret", "ls", "-q").split()) == sorted([first.strip(), second])
    table = ok(cluster, "secret", "ls").splitlines()
    assert table[0].split() == ["ID", "NAME", "CREATED", "UPDATED"]
    assert table[1].split()[:2] == [second[:12], "api_key"]
    assert "db_password" in ok(cluster, "secret", "inspect", "--pretty", "db_password")
    one_line_error(
        cluster.clusterctl("secret", "create", "x", str(tmp_path / "missing")), "is not a file"
    )
    one_line_error(cluster.clusterctl("secret", "create", "--label", "=v", "x", "-"), "KEY=VALUE")
    assert ok(cluster, "secret", "rm", "db_password", second[:10]).split() == [
        "db_password",
        second[:10],
    ]
    one_line_error(cluster.clusterctl("secret", "rm", "api_key"), "secret api_key not found")


def test_configs_show_their_data(cluster: InProcessCluster, tmp_path: Path) -> None:
    (tmp_path / "site.conf").write_text("listen 80\n")
    config_id = ok(cluster, "config", "create", "site", str(tmp_path / "site.conf")).strip()
    shown = json.loads(ok(cluster, "config", "inspect", "site"))
    assert shown[0]["ID"] == config_id
    assert base64.b64decode(shown[0]["Spec"]["Data"]) == b"listen 80\n"
    assert "listen 80" in ok(cluster, "config", "inspect", "--pretty", config_id[:7])
    assert ok(cluster, "config", "ls", "-q").split() == [config_id]
    assert json.loads(ok(cluster, "config", "ls", "--format", "json"))[0]["ID"] == config_id
    ok(cluster, "config", "rm", "site")
    assert json.loads(ok(cluster, "config", "ls", "--format", "json")) == []
    one_line_error(cluster.clusterctl("config", "inspect", "site"), "config site not found")


def test_volumes(cluster: InProcessCluster) -> None:
    assert ok(
        cluster, "volume", "create", "-d", "shoal", "--opt", "replication=000", "--label", "a=b",
        "data",
    ).strip() == "data"  # fmt: skip
    ok(cluster, "volume", "create", "scratch")
    shown = json.loads(ok(cluster, "volume", "inspect", "data"))
    assert shown[0]["Driver"] == "shoal" and shown[0]["Scope"] == "global"
    assert shown[0]["Options"] == {"replication": "000", "sharing": "none"}
    assert shown[0]["Labels"] == {"a": "b"}
    listed = json.loads(ok(cluster, "volume", "ls", "--format", "json"))
    assert [(v["Name"], v["Driver"]) for v in listed] == [("data", "shoal"), ("scratch", "local")]
    assert ok(cluster, "volume", "ls", "-q").split() == ["data", "scratch"]
    filtered = ok(cluster, "volume", "ls", "--filter", "driver=shoal", "-q")
    assert filtered.split() == ["data"]
    table = ok(cluster, "volume", "ls").splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and table[1].split() == [
        "shoal",
        "data",
    ]
    one_line_error(
        cluster.clusterctl("volume", "create", "-d", "nfs", "x1"),
        "unknown volume driver 'nfs': use local or shoal",
    )
    one_line_error(
        cluster.clusterctl("volume", "create", "-d", "shoal", "--opt", "replication=12", "x1"),
        "invalid replication '12': three digits xyz",
    )
    one_line_error(
        cluster.clusterctl("volume", "create", "-d", "shoal", "--opt", "size=1G", "x1"),
        "shoal driver: unknown option(s) size",
    )
    one_line_error(cluster.clusterctl("volume", "create", "--opt", "size", "x"), "KEY=VALUE")
    one_line_error(cluster.clusterctl("volume", "ls", "--filter", "color=red"), "Invalid filter")
    assert ok(cluster, "volume", "rm", "data", "scratch").split() == ["data", "scratch"]
    one_line_error(cluster.clusterctl("volume", "rm", "data"), "no such volume")
    ok(cluster, "volume", "rm", "--force", "data")


def test_a_service_mount_creates_its_volume_which_stays_while_in_use(
    cluster: InProcessCluster,
) -> None:
    mount = "type=volume,source=pgdata,target=/data,volume-driver=shoal,volume-opt=sharing=all"
    service_id = ok(
        cluster, "service", "create", "--detach", "--name", "pg", "--mount", mount, "busybox"
    ).split()[0]
    shown = json.loads(ok(cluster, "volume", "inspect", "pgdata"))
    assert shown[0]["Options"] == {"replication": "001", "sharing": "all"}
    one_line_error(
        cluster.clusterctl("volume", "rm", "pgdata"), "remove pgdata: volume is in use - ["
    )
    one_line_error(
        cluster.clusterctl(
            "service", "create", "--detach", "--mount",
            "type=volume,source=other,target=/data,volume-driver=nfs", "busybox",
        ),
        'invalid mount config for type "volume": unknown volume driver \'nfs\'',
    )  # fmt: skip
    ok(cluster, "service", "rm", service_id)
    assert "other" not in ok(cluster, "volume", "ls", "-q").split()
