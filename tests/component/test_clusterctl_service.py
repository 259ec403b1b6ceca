"""`clusterctl service ...` against a real manager API in this process, with
simulated agents moving tasks on (so create and update really converge)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clusterctl.main import main
from tests.component.cli_cluster import CLUSTERCTL, InProcessCluster, in_process_cluster

# Every convergence waits for the monitor period; 1 s keeps the tests quick.
FAST = ("--update-monitor", "1s")


def ok(cluster: InProcessCluster, *args: str) -> str:
    done = cluster.clusterctl(*args, timeout=30)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def as_json(cluster: InProcessCluster, *args: str) -> object:
    return json.loads(ok(cluster, *args))


def one_line_error(cluster: InProcessCluster, *args: str) -> str:
    done = cluster.clusterctl(*args, timeout=30)
    assert done.returncode == 1, (args, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, done.stderr)
    assert "Traceback" not in done.stderr
    return lines[0]


def test_a_service_is_created_listed_updated_scaled_rolled_back_and_removed(
    tmp_path: Path,
) -> None:
    with in_process_cluster(tmp_path) as cluster:
        out = ok(cluster, "service", "create", "--name", "web", "--replicas", "3", *FAST,
                 "-p", "8080:80", "-e", "A=1", "busybox", "sleep", "100")  # fmt: skip
        service_id = out.splitlines()[0]
        assert len(service_id) == 25
        # No terminal: plain lines, no control codes, ending as docker's.
        assert "\x1b" not in out
        assert "overall progress: 3 out of 3 tasks" in out
        assert "verify: Waiting 1 seconds to verify that tasks are stable..." in out
        assert out.rstrip().endswith("verify: Service converged")

        listed = as_json(cluster, "service", "ls", "--format", "json")
        assert isinstance(listed, list) and listed[0]["Spec"]["Name"] == "web"
        assert listed[0]["ServiceStatus"]["RunningTasks"] == 3
        table = ok(cluster, "service", "ls").splitlines()
        assert table[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
        assert table[1].split() == [
            service_id[:12], "web", "replicated", "3/3", "busybox:latest", "*:8080->80/tcp"
        ]  # fmt: skip
        assert ok(cluster, "service", "ls", "-q").split() == [service_id]

        tasks = as_json(cluster, "service", "ps", "--format", "json", "web")
        assert isinstance(tasks, list) and len(tasks) == 3
        assert sorted(ok(cluster, "service", "ps", "-q", service_id[:8]).split()) == sorted(
            t["ID"] for t in tasks
        )
        ps_table = ok(cluster, "service", "ps", "web")
        assert "web.1" in ps_table and "worker-1" in ps_table
        assert "Running" in ps_table and "seconds ago" in ps_table

        inspected = as_json(cluster, "service", "inspect", "web")
        assert isinstance(inspected, list) and inspected[0]["ID"] == service_id
        container = inspected[0]["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert container["Args"] == ["sleep", "100"] and container["Env"] == ["A=1"]
        pretty = ok(cluster, "service", "inspect", "--pretty", "web")
        assert "web" in pretty and "busybox:latest" in pretty and "Replicas" in pretty

        out = ok(cluster, "service", "update", "--env-add", "B=2", "--image", "busybox:2", "web")
        assert out.rstrip().endswith("verify: Service converged")
        spec = cluster.api("GET", "/services/web")["Spec"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1", "B=2"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox:2"

        ok(cluster, "service", "update", "--force", "--detach", "web")
        assert cluster.api("GET", "/services/web")["Spec"]["TaskTemplate"]["ForceUpdate"] == 1

        out = ok(cluster, "service", "scale", "web=2")
        assert out.startswith("web scaled to 2") and "Service converged" in out
        assert cluster.api("GET", "/services/web")["Spec"]["Mode"]["Replicated"]["Replicas"] == 2

        out = ok(cluster, "service", "rollback", "web")
        assert "rollback: manually requested rollback" in out and "Service converged" in out
        assert cluster.api("GET", "/services/web")["Spec"]["Mode"]["Replicated"]["Replicas"] == 3

        assert ok(cluster, "service", "rm", "web").split() == ["web"]
        assert cluster.api("GET", "/services") == []


BAD_INPUTS = [
    (("service", "ps", "nope"), "service nope not found"),
    (("service", "inspect", "nope"), "service nope not found"),
    (("service", "update", "--image", "x", "nope"), "service nope not found"),
    (("service", "rollback", "nope"), "service nope not found"),
    (("service", "scale", "nope=2"), "service nope not found"),
    (("service", "scale", "web"), "want SERVICE=REPLICAS"),
    (("service", "create", "--publish", "80:80:80", "busybox"), "invalid port '80:80:80'"),
    (("service", "create", "--replicas", "abc", "busybox"), "--replicas"),
    (("service", "create", "--replicas", "-1", "busybox"), "--replicas"),
    (("service", "create", "--update-delay", "xyz", "busybox"), "invalid duration 'xyz'"),
    (("service", "create", "--limit-memory", "12XB", "busybox"), "invalid size '12XB'"),
    (("service", "create", "--constraint", "node.role=manager", "busybox"), "invalid constraint"),
    (("service", "create", "--mount", "type=bind,target=/x", "busybox"), "needs a source"),
    (("service", "create", "--secret", "missing", "busybox"), "secret not found: missing"),
    (("service", "create", "--network", "missing", "busybox"), "missing"),
    (("service", "create", "--mode", "global", "--replicas", "2", "busybox"), "does not apply"),
]


def test_bad_input_is_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # clusterctl's main() in this process: a subprocess per case would be slow.
    with in_process_cluster(tmp_path) as cluster:
        monkeypatch.setenv("CLUSTERCTL_MANAGER", cluster.manager)
        for args, message in BAD_INPUTS:
            with pytest.raises(SystemExit) as exited:
                main(list(args))
            stderr = capsys.readouterr().err
            assert exited.value.code == 1, (args, stderr)
            assert stderr.startswith("error: ") and stderr.count("\n") == 1, (args, stderr)
            assert message in stderr, (args, stderr)
        assert one_line_error(cluster, "service", "rm", "nope") == "error: service nope not found"
        assert cluster.api("GET", "/services") == []


def test_a_paused_update_ends_the_wait_with_its_message(tmp_path: Path) -> None:
    with in_process_cluster(tmp_path) as cluster:
        ok(cluster, "service", "create", "--name", "app", "--replicas", "2", *FAST, "busybox")
        line = one_line_error(
            cluster,
            "service",
            "update",
            "--image",
            "bad",
            "--update-failure-action",
            "pause",
            "app",
        )
        assert line.startswith("error: service update paused:")


def spawn(
    cluster: InProcessCluster, *args: str, terminal: bool
) -> tuple[subprocess.Popen[bytes], int]:
    """clusterctl with its stdout on a pseudo-terminal (or a pipe); the fd to read."""
    command = [CLUSTERCTL, *args]
    base = dict(os.environ, CLUSTERCTL_MANAGER=cluster.manager)
    if not terminal:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base
        )
        assert process.stdout is not None
        return process, process.stdout.fileno()
    leader, follower = pty.openpty()
    env = dict(base, COLUMNS="100", LINES="40", TERM="xterm")
    process = subprocess.Popen(command, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    return process, leader


def read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    """What the fd gives until `wanted` appears, or until it closes."""
    seen = b""
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # a pty reports its closed end as EIO
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_the_convergence_display_redraws_on_a_terminal(tmp_path: Path) -> None:
    with in_process_cluster(tmp_path) as cluster:
        args = ("service", "create", "--name", "web", "--replicas", "3", *FAST, "busybox")
        process, fd = spawn(cluster, *args, terminal=True)
        try:
            seen = read_until(fd, b"Service converged", time.monotonic() + 30)
            assert process.wait(10) == 0
        finally:
            process.kill()
            os.close(fd)
        text = seen.decode(errors="replace")
        assert "overall progress: 3 out of 3 tasks" in text
        assert "3/3: running" in text and "=>]" in text
        assert "Service converged" in text
        assert "\x1b[" in text  # redrawn in place


@pytest.mark.parametrize("terminal", [False, True])
def test_ctrl_c_leaves_the_operation_running(tmp_path: Path, terminal: bool) -> None:
    with in_process_cluster(tmp_path) as cluster:
        args = ("service", "create", "--name", "slow", "--update-monitor", "60s", "busybox")
        process, fd = spawn(cluster, *args, terminal=terminal)
        try:
            assert b"verify: Waiting" in read_until(fd, b"verify: Waiting", time.monotonic() + 20)
            process.send_signal(signal.SIGINT)
            assert process.wait(10) == 130
            rest = read_until(fd, b"check progress", time.monotonic() + 5)
            if not terminal:
                assert process.stderr is not None
                rest = process.stderr.read()
        finally:
            process.kill()
            if terminal:
                os.close(fd)
        assert b"Operation continuing in background." in rest
        assert b"clusterctl service ps slow" in rest
        assert cluster.api("GET", "/services/slow")["Spec"]["Name"] == "slow"
