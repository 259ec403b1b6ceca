"""`clusterctl cluster ...`, contexts, help and completion, against a real
manager API in this process. Joining and leaving for real need a lab
(tests/lab/test_clusterctl.py); here they must fail cleanly."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import click
import pytest

from api.security import CertFiles, new_key_and_csr, utcnow
from clusterctl.main import cli
from manager.ca import new_root_ca, sign
from tests.component.cli_cluster import CLUSTERCTL, InProcessCluster, in_process_cluster

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clusterctl_config")]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """clusterctl with no --manager added (context commands, unreachable ones)."""
    return subprocess.run(
        [CLUSTERCTL, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **(env or {})},
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_cluster_info_and_join_tokens(cluster: InProcessCluster) -> None:
    info = json.loads(ok(cluster.clusterctl("cluster", "info", "--format", "json")))
    assert info["LocalNodeState"] == "active" and info["Nodes"] == 3 and info["Managers"] == 1
    cluster_id = info["Cluster"]["ID"]
    text = ok(cluster.clusterctl("cluster", "info"))
    assert "Swarm: active" in text and f"ClusterID: {cluster_id}" in text
    assert "127.0.0.1:2377" in text

    tokens = cluster.api("GET", "/v1.41/swarm")["JoinTokens"]
    assert (
        ok(cluster.clusterctl("cluster", "join-token", "-q", "worker")).strip() == tokens["Worker"]
    )
    hint = ok(cluster.clusterctl("cluster", "join-token", "manager"))
    assert f"clusterctl cluster join --token {tokens['Manager']} 127.0.0.1:2377" in hint
    rotated = ok(cluster.clusterctl("cluster", "join-token", "--rotate", "-q", "worker")).strip()
    after = cluster.api("GET", "/v1.41/swarm")["JoinTokens"]
    assert rotated == after["Worker"] != tokens["Worker"]
    assert after["Manager"] == tokens["Manager"]  # only the one asked for
    one_line_error(cluster.clusterctl("cluster", "join-token", "boss"), "'boss'")


def test_join_and_leave_fail_cleanly_on_an_in_process_manager(cluster: InProcessCluster) -> None:
    token = cluster.api("GET", "/v1.41/swarm")["JoinTokens"]["Manager"]
    one_line_error(
        cluster.clusterctl("cluster", "join", "--token", token, "127.0.0.1:2377"),
        "already part of a swarm",
    )
    one_line_error(
        cluster.clusterctl("cluster", "join", "--token", "SWMTKN-nope", "127.0.0.1:2377"),
        "invalid join token",
    )
    one_line_error(cluster.clusterctl("cluster", "leave"), "Use `--force`")
    one_line_error(
        cluster.clusterctl("cluster", "leave", "--force"), "cannot change its membership"
    )
    one_line_error(cluster.clusterctl("cluster", "init"), "already part of a swarm")


def test_init_starts_the_cluster_and_writes_an_admin_context(
    tmp_path: Path, clusterctl_config: Path
) -> None:
    with in_process_cluster(tmp_path, init=False) as fresh:
        assert ok(fresh.clusterctl("cluster", "info")).strip() == "Swarm: inactive"
        one_line_error(fresh.clusterctl("node", "ls"), "not part of a swarm")
        one_line_error(fresh.clusterctl("node", "ps"), "not part of a cluster")
        one_line_error(
            fresh.clusterctl("cluster", "init", "--cert-expiry", "30m"),
            "minimum certificate expiry",
        )
        one_line_error(fresh.clusterctl("cluster", "init", "--cert-expiry", "soon"), "'soon'")
        done = ok(fresh.clusterctl("cluster", "init", "--default-addr-pool", "10.50.0.0/16"))
        assert "Cluster initialized" in done and "SWMTKN-1-" in done
        assert CertFiles(clusterctl_config / "certs" / "default").complete()
        listed = json.loads(ok(run("context", "ls", "--format", "json")))
        assert [(c["name"], c["current"]) for c in listed] == [("default", True)]
        networks = json.loads(ok(fresh.clusterctl("network", "ls", "--format", "json")))
        assert networks[0]["IPAM"]["Config"][0]["Subnet"].startswith("10.50.")


def test_contexts_choose_the_manager(cluster: InProcessCluster, clusterctl_config: Path) -> None:
    assert ok(run("context", "create", "here", "--manager", cluster.manager)).strip() == "here"
    one_line_error(run("node", "ls"), "no context")
    ok(run("context", "use", "here"))
    assert len(json.loads(ok(run("node", "ls", "--format", "json")))) == 3
    # A second context, chosen per command with --context or $CLUSTERCTL_CONTEXT.
    ok(run("context", "create", "nowhere", "--manager", "unix:///nonexistent.sock"))
    one_line_error(run("node", "ls", "--context", "nowhere"), "cannot reach the manager")
    one_line_error(run("node", "ls", env={"CLUSTERCTL_CONTEXT": "nowhere"}), "cannot reach")
    assert ok(run("node", "ls", "-q", "--context", "nowhere", "--manager", cluster.manager))
    listed = json.loads(ok(run("context", "ls", "--format", "json")))
    assert [(c["name"], c["current"]) for c in listed] == [("here", True), ("nowhere", False)]
    table = ok(run("context", "ls")).splitlines()
    assert table[1].startswith("here *") and ok(run("context", "ls", "-q")).split() == [
        "here",
        "nowhere",
    ]
    assert json.loads(ok(run("context", "inspect")))[0]["manager"] == cluster.manager
    one_line_error(run("context", "create", "here", "--manager", "x:1"), "already exists")
    one_line_error(run("context", "use", "gone"), "context 'gone' does not exist")
    one_line_error(run("node", "ls", "--context", "gone"), "context 'gone' does not exist")
    assert ok(run("context", "rm", "nowhere", "here")).split() == ["nowhere", "here"]
    assert json.loads(ok(run("context", "ls", "--format", "json"))) == []


def test_context_certificates(tmp_path: Path, clusterctl_config: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    ok(
        run(
            "context", "create", "tls", "--manager", "127.0.0.1:1", "--ca",
            str(tmp_path / "ca.pem"), "--cert", str(tmp_path / "cert.pem"),
            "--key", str(tmp_path / "key.pem"),
        )
    )  # fmt: skip
    copied = CertFiles(clusterctl_config / "certs" / "tls")
    assert copied.complete() and copied.key.stat().st_mode & 0o077 == 0
    # A certificate that is not one: one line naming where it is.
    one_line_error(
        run("node", "ls", "--context", "tls"), f"client certificate in {copied.directory}"
    )
    ok(run("context", "create", "bare", "--manager", "127.0.0.1:1"))
    one_line_error(run("node", "ls", "--context", "bare"), "no client certificate")
    one_line_error(
        run("context", "create", "half", "--manager", "127.0.0.1:1", "--ca", str(copied.ca)),
        "go together",
    )
    one_line_error(
        run("context", "create", "x", "--manager", "h:1", "--certs", str(tmp_path / "none")),
        "does not exist",
    )
    one_line_error(run("context", "create", "a/b", "--manager", "h:1"), "invalid context name")
    ok(run("context", "rm", "tls"))
    assert not copied.directory.exists()  # the copies went with the context


def test_an_expired_certificate_is_named_as_the_reason(tmp_path: Path) -> None:
    past = utcnow() - timedelta(days=2)
    ca = new_root_ca(past)
    key, csr = new_key_and_csr()
    cert = sign(
        ca, csr, node_id="a" * 25, role="admin", cluster_id="c", lifetime=timedelta(hours=1),
        now=past,
    )  # fmt: skip
    CertFiles(tmp_path / "old").save(ca.cert_pem, cert, key)
    ok(
        run(
            "context", "create", "old", "--manager", "127.0.0.1:1", "--certs", str(tmp_path / "old")
        )
    )
    one_line_error(run("node", "ls", "--context", "old"), "expired at")


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")


def test_every_command_has_help_with_an_example() -> None:
    missing = []
    for name, command in commands(cli):
        if isinstance(command, click.Group):
            continue
        text = command.get_help(click.Context(command, info_name=name))
        if "Example:" not in text:
            missing.append(name)
    assert missing == []
    assert "Example:" in ok(run("node", "update", "--help"))


def test_completion_scripts() -> None:
    script = ok(run("completion", "bash"))
    assert "_CLUSTERCTL_COMPLETE" in script and "complete " in script
    done = run(
        env={
            "_CLUSTERCTL_COMPLETE": "bash_complete",
            "COMP_WORDS": "clusterctl no",
            "COMP_CWORD": "1",
        }
    )
    assert "plain,node" in done.stdout
