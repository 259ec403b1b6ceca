"""Managers that keep the cluster state in an external etcd, driven by the
stock docker CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.enroll import from_local_manager
from api.security import CertFiles
from tests.store.backends import etcd_server, free_port

DOCKER = "/usr/bin/docker"


@pytest.fixture
async def etcd(tmp_path: Path) -> AsyncIterator[str]:
    async with etcd_server(tmp_path / "etcd") as server:
        yield server.url


def start_manager(tmp_path: Path, name: str, endpoint: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    address = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "shoal-manager"),
            "--data-dir",
            str(tmp_path / name),
            "--listen-addr",
            address,
            "--advertise-addr",
            address,
            "--raft-addr",
            f"127.0.0.1:{free_port()}",
            "--store",
            "etcd",
            "--etcd-endpoints",
            endpoint,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, address


def docker(address: str, *args: str, certs: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Over TCP with mutual TLS (an address), or through a unix socket (a path)."""
    where = ["-H", f"unix://{address}"]
    if certs is not None:
        where = ["--tlsverify", "-H", f"tcp://{address}"]
        where += [f"--tlscacert={certs}/ca.pem", f"--tlscert={certs}/cert.pem"]
        where += [f"--tlskey={certs}/key.pem"]
    return subprocess.run(
        [DOCKER, *where, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_two_managers_share_one_etcd(tmp_path: Path, etcd: str) -> None:
    await asyncio.to_thread(two_managers_share_one_etcd, tmp_path, etcd)


def two_managers_share_one_etcd(tmp_path: Path, etcd: str) -> None:
    managers = [start_manager(tmp_path, f"m{i}", etcd) for i in (1, 2)]
    try:
        first, second = managers[0][1], managers[1][1]
        socket = str(tmp_path / "m1" / "manager.sock")
        deadline = time.monotonic() + 30
        while docker(socket, "swarm", "init").returncode != 0:
            assert time.monotonic() < deadline, "the first manager never answered"
            time.sleep(0.3)
        certs = tmp_path / "admin"
        asyncio.run(from_local_manager(socket, "/shoal/ca/admin")).save(CertFiles(certs))
        # The second manager finds the cluster (and its CA) in etcd, signs its
        # own certificate and opens its TLS port.
        while docker(second, "info", certs=certs).returncode != 0:
            assert time.monotonic() < deadline, "the second manager never answered"
            time.sleep(0.3)
        created = docker(
            second, "service", "create", "--detach", "--name", "onetcd", "busybox", certs=certs
        )
        assert created.returncode == 0, created.stderr
        assert "onetcd" in docker(first, "service", "ls", certs=certs).stdout
        while len(docker(first, "node", "ls", certs=certs).stdout.strip().splitlines()) != 3:
            assert time.monotonic() < deadline, "the second manager never registered"
            time.sleep(0.3)
        lines = docker(second, "node", "ls", certs=certs).stdout
        assert lines.count("Leader") == 1 and lines.count("Reachable") == 1
    finally:
        for process, _ in managers:
            process.terminate()
            process.wait(30)
