"""`clusterctl cluster init` against a real shoal-manager process: the admin
certificate and context it writes work for clusterctl and for the stock
docker CLI with --tlsverify; mistakes are one line and exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.store.backends import free_port

pytestmark = pytest.mark.timeout(120)
BIN = Path(sys.executable).parent
DOCKER = "/usr/bin/docker"


@dataclass
class LocalManager:
    address: str
    socket: Path
    config: Path

    def clusterctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, CLUSTERCTL_CONFIG=str(self.config))
        env.pop("CLUSTERCTL_CONTEXT", None)
        return subprocess.run(
            [str(BIN / "clusterctl"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[LocalManager]:
    address = f"127.0.0.1:{free_port()}"
    data = tmp_path / "manager"
    process = subprocess.Popen(
        [
            str(BIN / "shoal-manager"),
            "--data-dir",
            str(data),
            "--listen-addr",
            address,
            "--advertise-addr",
            address,
            "--raft-addr",
            f"127.0.0.1:{free_port()}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (data / "manager.sock").exists():
            assert time.monotonic() < deadline, "the manager did not start"
            time.sleep(0.1)
        yield LocalManager(address, data / "manager.sock", tmp_path / "config")
    finally:
        process.terminate()
        process.wait(30)


def test_init_writes_an_admin_certificate_and_a_context(manager: LocalManager) -> None:
    done = manager.clusterctl("cluster", "init", "--socket", str(manager.socket))
    assert done.returncode == 0, done.stderr
    assert "Cluster initialized" in done.stdout and "SWMTKN-1-" in done.stdout
    certs = manager.config / "certs" / "default"
    assert {p.name for p in certs.iterdir()} >= {"ca.pem", "cert.pem", "key.pem"}
    assert oct((certs / "key.pem").stat().st_mode & 0o777) == "0o600"

    listed = manager.clusterctl("node", "ls")
    assert listed.returncode == 0, listed.stderr
    assert "Leader" in listed.stdout and "Ready" in listed.stdout
    contexts = manager.clusterctl("context", "ls")
    assert "default *" in contexts.stdout and manager.address in contexts.stdout

    env = dict(
        os.environ,
        DOCKER_HOST=f"tcp://{manager.address}",
        DOCKER_TLS_VERIFY="1",
        DOCKER_CERT_PATH=str(certs),
    )
    docker = subprocess.run(
        [DOCKER, "node", "ls"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert docker.returncode == 0, docker.stderr
    assert "Leader" in docker.stdout
    # Without the certificate the manager's port does not serve the API.
    env.pop("DOCKER_CERT_PATH")
    env.pop("DOCKER_TLS_VERIFY")
    bare = subprocess.run(
        [DOCKER, "node", "ls"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert bare.returncode != 0


def test_mistakes_are_one_line_and_exit_1(manager: LocalManager) -> None:
    short = manager.clusterctl(
        "cluster", "init", "--socket", str(manager.socket), "--cert-expiry", "10m"
    )
    assert short.returncode == 1
    assert short.stderr.strip().splitlines() == [
        "error: rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
    ]
    for args, message in (
        (("node", "ls"), "no context"),
        (("node", "ls", "--context", "nope"), "context 'nope' does not exist"),
        (("cluster", "init", "--socket", "/nonexistent.sock"), "cannot reach the manager"),
        (("cluster", "init", "--cert-expiry", "soon"), "invalid duration"),
    ):
        done = manager.clusterctl(*args)
        assert done.returncode == 1, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
    assert manager.clusterctl("cluster", "init", "--socket", str(manager.socket)).returncode == 0
    again = manager.clusterctl("cluster", "init", "--socket", str(manager.socket))
    assert again.returncode == 1 and "already part of a swarm" in again.stderr
