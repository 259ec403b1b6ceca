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


def docker(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, "-H", f"tcp://{address}", *args],
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
        deadline = time.monotonic() + 30
        while docker(first, "swarm", "init").returncode != 0:
            assert time.monotonic() < deadline, "the first manager never answered"
            time.sleep(0.3)
        while docker(second, "info").returncode != 0:
            assert time.monotonic() < deadline, "the second manager never answered"
            time.sleep(0.3)
        created = docker(second, "service", "create", "--detach", "--name", "onetcd", "busybox")
        assert created.returncode == 0, created.stderr
        assert "onetcd" in docker(first, "service", "ls").stdout
        while len(docker(first, "node", "ls").stdout.strip().splitlines()) != 3:
            assert time.monotonic() < deadline, "the second manager never registered"
            time.sleep(0.3)
        lines = docker(second, "node", "ls").stdout
        assert lines.count("Leader") == 1 and lines.count("Reachable") == 1
    finally:
        for process, _ in managers:
            process.terminate()
            process.wait(30)
