"""Raft-only behaviour: encrypted traffic, garbage on the Raft port, and the
leader-only components following leadership."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

from manager.leader import LeaderOnly
from manager.store.raft import RaftConfig, RaftProposer
from manager.store.state import StoreState
from tests.store.backends import free_port, raft_cluster


def secret(name: str) -> dict[str, object]:
    return {"ID": name, "Spec": {"Name": name}}


async def test_garbage_on_the_raft_port_is_dropped_and_the_cluster_goes_on(
    tmp_path: Path,
) -> None:
    async with raft_cluster(tmp_path) as stores:
        for store in stores:
            proposer = store.proposer
            assert isinstance(proposer, RaftProposer)
            host, port = proposer.config.address.rsplit(":", 1)
            for payload in (os.urandom(4096), b"\x00\x00\x00\x10" + os.urandom(16), b"\xff" * 64):
                with socket.create_connection((host, int(port)), timeout=2) as conn:
                    conn.sendall(payload)
        await stores[0].update(lambda tx: tx.create("secret", secret("after-garbage")))
        deadline = time.monotonic() + 10
        while any(s.view(lambda tx: tx.get("secret", "after-garbage")) is None for s in stores):
            assert time.monotonic() < deadline, "a replica stopped replicating"
            await asyncio.sleep(0.05)


async def test_a_member_without_the_cluster_key_learns_nothing(tmp_path: Path) -> None:
    async with raft_cluster(tmp_path) as stores:
        peers = tuple(s.proposer.config.address for s in stores)  # type: ignore[attr-defined]
        intruder = RaftProposer(
            StoreState(),
            RaftConfig(
                f"127.0.0.1:{free_port()}",
                peers,
                tmp_path / "intruder",
                password="not-the-cluster-key",
            ),
        )
        intruder.start()
        try:
            await stores[0].update(lambda tx: tx.create("secret", secret("private")))
            await asyncio.sleep(2)
            assert intruder.state.index == 0
            assert intruder.state.get("secret", "private") is None
        finally:
            await intruder.stop()


class Recorder:
    def __init__(self, runs: list[str], name: str) -> None:
        self.runs, self.name = runs, name

    async def run(self) -> None:
        self.runs.append(f"start {self.name}")
        try:
            await asyncio.Event().wait()
        finally:
            self.runs.append(f"stop {self.name}")


async def test_leader_only_components_run_on_the_leader_and_move_with_it(
    tmp_path: Path,
) -> None:
    async with raft_cluster(tmp_path) as stores:
        runs: list[str] = []
        proposers = [s.proposer for s in stores]
        runners = [
            LeaderOnly(p, [lambda i=i: Recorder(runs, f"m{i}")])  # type: ignore[misc, arg-type]
            for i, p in enumerate(proposers)
        ]
        tasks = [asyncio.create_task(r.run()) for r in runners]
        try:
            deadline = time.monotonic() + 10
            while sum(r.running for r in runners) != 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            leader = next(i for i, r in enumerate(runners) if r.running)
            assert proposers[leader].is_leader()
            await proposers[leader].stop()  # type: ignore[attr-defined]
            while not any(r.running for i, r in enumerate(runners) if i != leader):
                assert time.monotonic() < deadline + 20, "no other manager took over"
                await asyncio.sleep(0.05)
            assert f"stop m{leader}" in runs
            assert sum(r.running for r in runners) == 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
