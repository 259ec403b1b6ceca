"""The agent mounts a task's volumes through volumed before creating its
container and gives them back as soon as the container has stopped, before
the manager hears that the task ended (the next task may then mount a
distributed volume on another node). FakeRuntime and FakeVolumePlugin stand
in for containerd and volumed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.volumes import FakeVolumePlugin, TaskVolumes
from agent.worker import Worker
from runtime.fake import FakeRuntime

pytestmark = pytest.mark.timeout(20)
Obj = dict[str, Any]
IMAGE = "docker.io/library/busybox:latest"


def task(task_id: str, script: str, *mounts: Obj, desired: str = "running") -> Obj:
    return {
        "ID": task_id,
        "ServiceID": "svc",
        "DesiredState": desired,
        "Spec": {
            "ContainerSpec": {
                "Image": IMAGE,
                "Command": ["sh", "-c", script],
                "Mounts": list(mounts),
            }
        },
    }


def volume_mount(source: str, target: str = "/data", **extra: Any) -> Obj:
    return {"Type": "volume", "Source": source, "Target": target, **extra}


class Node:
    def __init__(self, root: Path) -> None:
        self.runtime = FakeRuntime()
        self.runtime.host.registry[IMAGE] = {"config": {}}
        self.plugin = FakeVolumePlugin(root)
        self.volumes = TaskVolumes(self.plugin)
        self.reports: list[tuple[str, str, set[str]]] = []  # state, err, who mounted "data" then
        self.worker = Worker(self.runtime, self._report, volumes=self.volumes)

    def _report(self, update: Obj) -> None:
        status = update["Status"]
        holders = set(self.plugin.mounts.get("data", set()))
        self.reports.append((status["State"], status.get("Err", ""), holders))

    async def until(self, state: str) -> tuple[str, str, set[str]]:
        async with asyncio.timeout(10):
            while True:
                for report in self.reports:
                    if report[0] == state:
                        return report
                await asyncio.sleep(0.01)


async def test_a_task_gets_its_volume_mounted_and_gives_it_back_before_reporting_its_end(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path)
    node.volumes.learn([{"Name": "data", "Driver": "shoal", "Options": {"replication": "000"}}])
    node.worker.assign([task("t1", "sleep 0.2; exit 0", volume_mount("data"))])

    _, _, holders = await node.until("running")
    assert holders == {"t1"}
    assert node.plugin.options["data"] == {"driver": "shoal", "replication": "000"}
    container = node.runtime.host.containers["t1"].config.spec
    assert [(m.source, m.target) for m in container.mounts] == [(str(tmp_path / "data"), "/data")]

    _, _, holders = await node.until("complete")
    assert holders == set()  # unmounted before the manager heard the task had ended
    await node.worker.close()


async def test_a_shutdown_unmounts_and_a_volume_the_store_does_not_know_uses_the_mounts_driver(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path)
    config = {"DriverConfig": {"Name": "shoal", "Options": {"sharing": "all"}}}
    node.worker.assign([task("t1", "sleep 60", volume_mount("data", VolumeOptions=config))])
    await node.until("running")
    assert node.plugin.options["data"] == {"driver": "shoal", "sharing": "all"}

    node.worker.assign([task("t1", "sleep 60", volume_mount("data"), desired="shutdown")])
    _, _, holders = await node.until("shutdown")
    assert holders == set()
    await node.worker.close()


async def test_a_refused_mount_rejects_the_task_with_volumeds_reason_and_mounts_nothing(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path)
    node.plugin.refuse["other"] = "volume other is in use on node n2"
    two = [volume_mount("data"), volume_mount("other", "/other")]
    node.worker.assign([task("t1", "sleep 60", *two)])

    _, err, holders = await node.until("rejected")
    assert "volume other is in use on node n2" in err
    assert holders == set()  # data was mounted first, then given back
    assert "t1" not in node.runtime.host.containers
    await node.worker.close()


async def test_cut_off_from_the_managers_only_tasks_holding_an_exclusive_volume_stop(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path)
    node.volumes.learn(
        [
            {"Name": "data", "Driver": "shoal", "Options": {}},
            {"Name": "shared", "Driver": "shoal", "Options": {"sharing": "all"}},
            {"Name": "scratch", "Driver": "local", "Options": {}},
        ]
    )
    node.worker.assign(
        [
            task("excl", "sleep 60", volume_mount("data")),
            task("shared", "sleep 60", volume_mount("shared")),
            task("local", "sleep 60", volume_mount("scratch")),
            task("reader", "sleep 60", volume_mount("data", "/ro", ReadOnly=True)),
        ]
    )
    async with asyncio.timeout(10):
        while len([r for r in node.reports if r[0] == "running"]) < 4:
            await asyncio.sleep(0.01)

    node.worker.fence(node.volumes.exclusive)
    _, _, holders = await node.until("shutdown")
    assert holders == {"reader"}  # the writer gave the volume back; the reader holds on
    running = {i for i, r in node.worker.runners.items() if r.controller.state == "running"}
    assert running == {"shared", "local", "reader"}
    await node.worker.close()


async def test_an_anonymous_volume_is_the_tasks_own_and_goes_when_the_task_leaves(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path)
    anonymous = {"Type": "volume", "Target": "/cache"}
    node.worker.assign([task("t1", "sleep 60", volume_mount("data"), anonymous)])
    await node.until("running")
    spec = node.runtime.host.containers["t1"].config.spec
    own = tmp_path / "anon-t1-1"
    assert [(m.source, m.target) for m in spec.mounts] == [
        (str(tmp_path / "data"), "/data"),
        (str(own), "/cache"),
    ]
    assert node.plugin.options["anon-t1-1"] == {"driver": "local"}

    node.worker.assign([])  # the task left the cluster
    async with asyncio.timeout(10):
        while "anon-t1-1" in await node.plugin.names():
            await asyncio.sleep(0.01)
    assert "data" in await node.plugin.names()  # a named volume stays
    await node.worker.close()
