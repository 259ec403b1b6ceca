"""Docker's volume plugin protocol on a unix socket, over the fake backend:
the calls, their errors, the one-user rule and a restart of volumed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from volumed.backend import FakeBackend, LocalBackend, VolumeBackend
from volumed.plugin import CONTENT_TYPE, make_plugin_app
from volumed.volumes import Volumes

Call = Callable[..., Awaitable[tuple[int, dict[str, Any]]]]


class Node:
    """A volumed's plugin on a unix socket; `restart()` builds a new one on
    the same state file and backend storage."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.socket = tmp_path / "volumed.sock"
        self.observed: list[tuple[str, bool]] = []
        self.runner: web.AppRunner | None = None
        self.fake = FakeBackend(tmp_path / "fake")
        self.volumes: Volumes | None = None

    async def start(self) -> None:
        backends: dict[str, VolumeBackend] = {
            "shoal": self.fake,
            "local": LocalBackend(self.tmp_path / "local"),
        }
        self.volumes = Volumes(self.tmp_path / "volumes.json", backends, lambda: "T0")
        self.volumes.load()
        await self.volumes.recover()
        observe = lambda op, ok: self.observed.append((op, ok))  # noqa: E731
        self.runner = web.AppRunner(make_plugin_app(self.volumes, observe))
        await self.runner.setup()
        await web.UnixSite(self.runner, str(self.socket)).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def restart(self) -> None:
        await self.stop()
        self.fake = FakeBackend(self.tmp_path / "fake")
        await self.start()

    async def call(self, operation: str, body: object = None) -> tuple[int, dict[str, Any]]:
        path = operation if operation.startswith("/") else f"/VolumeDriver.{operation}"
        data = b"" if body is None else json.dumps(body).encode()
        connector = aiohttp.UnixConnector(path=str(self.socket))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(f"http://plugin{path}", data=data) as reply,
        ):
            assert reply.headers["Content-Type"] == CONTENT_TYPE
            return reply.status, json.loads(await reply.read())


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    node = Node(tmp_path)
    await node.start()
    yield node
    await node.stop()


async def test_activate_and_capabilities(node: Node) -> None:
    assert await node.call("/Plugin.Activate") == (200, {"Implements": ["VolumeDriver"]})
    assert await node.call("Capabilities", None) == (200, {"Capabilities": {"Scope": "global"}})


async def test_volume_lifecycle(node: Node) -> None:
    assert await node.call("Create", {"Name": "db", "Opts": {"replication": "000"}}) == (
        200,
        {"Err": ""},
    )
    status, got = await node.call("Get", {"Name": "db"})
    assert status == 200 and got["Err"] == ""
    assert got["Volume"] == {
        "Name": "db",
        "CreatedAt": "T0",
        "Status": {"Driver": "shoal", "Mounts": "0", "Replication": "000", "Sharing": "none"},
    }
    assert await node.call("Path", {"Name": "db"}) == (200, {"Mountpoint": "", "Err": ""})
    status, mounted = await node.call("Mount", {"Name": "db", "ID": "task-1"})
    assert status == 200 and mounted["Err"] == ""
    mountpoint = mounted["Mountpoint"]
    assert Path(mountpoint).is_dir()
    assert (await node.call("Path", {"Name": "db"}))[1]["Mountpoint"] == mountpoint
    assert await node.call("List", {}) == (
        200,
        {"Volumes": [{"Name": "db", "Mountpoint": mountpoint}], "Err": ""},
    )
    assert await node.call("Unmount", {"Name": "db", "ID": "task-1"}) == (200, {"Err": ""})
    assert node.fake.mounted() == set()
    assert await node.call("Remove", {"Name": "db"}) == (200, {"Err": ""})
    assert await node.call("List") == (200, {"Volumes": [], "Err": ""})
    assert ("Create", True) in node.observed


async def test_the_backend_mounts_once_for_many_users_of_a_shared_volume(node: Node) -> None:
    await node.call("Create", {"Name": "shared", "Opts": {"sharing": "all"}})
    for user in ("a", "b", "a"):
        assert (await node.call("Mount", {"Name": "shared", "ID": user}))[0] == 200
    await node.call("Unmount", {"Name": "shared", "ID": "a"})
    assert node.fake.mounted() == {"shared"}
    await node.call("Unmount", {"Name": "shared", "ID": "b"})
    assert node.fake.mounted() == set()
    assert [c for c in node.fake.calls if c[0] in ("mount", "unmount")] == [
        ("mount", "shared"),
        ("mount", "shared"),
        ("mount", "shared"),
        ("unmount", "shared"),
    ]


@pytest.mark.parametrize(
    ("operation", "body", "message"),
    [
        ("Create", {"Name": "db", "Opts": {"driver": "nfs"}}, "unknown volume driver 'nfs'"),
        ("Create", {"Name": "db", "Opts": {"replication": "1x1"}}, "invalid replication '1x1'"),
        ("Create", {"Name": "db", "Opts": ["x"]}, "Opts: an object"),
        ("Create", {"Opts": {}}, "invalid volume name None"),
        ("Get", {"Name": "nothere"}, "no such volume: nothere"),
        ("Mount", {"Name": "nothere", "ID": "t"}, "no such volume: nothere"),
        ("Mount", {"Name": "nothere"}, "Mount needs the ID"),
        ("Remove", {"Name": "nothere"}, "no such volume"),
        ("Create", "a string", "must be a JSON object"),
    ],
)
async def test_bad_requests_get_an_err(
    node: Node, operation: str, body: object, message: str
) -> None:
    status, reply = await node.call(operation, body)
    assert status == 500
    assert message in reply["Err"]
    assert (operation, False) in node.observed


async def test_a_body_that_is_not_json_gets_an_err(node: Node) -> None:
    connector = aiohttp.UnixConnector(path=str(node.socket))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post("http://plugin/VolumeDriver.Create", data=b"{nope") as reply,
    ):
        assert reply.status == 500
        assert "JSON object" in json.loads(await reply.read())["Err"]


async def test_a_volume_in_use_cannot_be_removed(node: Node) -> None:
    await node.call("Create", {"Name": "db"})
    await node.call("Mount", {"Name": "db", "ID": "task-1"})
    status, reply = await node.call("Remove", {"Name": "db"})
    assert status == 500
    assert reply["Err"] == "volume db is in use by task-1: unmount it first"


async def test_users_on_one_node_share_the_mount_until_the_last_one_goes(node: Node) -> None:
    await node.call("Create", {"Name": "db"})
    first = await node.call("Mount", {"Name": "db", "ID": "task-1"})
    second = await node.call("Mount", {"Name": "db", "ID": "task-2"})
    assert first == second and first[0] == 200
    await node.call("Unmount", {"Name": "db", "ID": "task-1"})
    assert node.fake.mounted() == {"db"}
    await node.call("Unmount", {"Name": "db", "ID": "task-2"})
    assert node.fake.mounted() == set()


async def test_a_repeated_create_is_fine_unless_it_asks_for_something_else(node: Node) -> None:
    assert (await node.call("Create", {"Name": "db"}))[0] == 200
    assert (await node.call("Create", {"Name": "db", "Opts": {"replication": "001"}}))[0] == 200
    status, reply = await node.call("Create", {"Name": "db", "Opts": {"replication": "000"}})
    assert status == 500 and "exists with other options" in reply["Err"]


async def test_a_failing_backend_leaves_nothing_half_done(node: Node) -> None:
    node.fake.fail.add("create")
    status, reply = await node.call("Create", {"Name": "db"})
    assert status == 500 and "injected failure" in reply["Err"]
    assert await node.call("List") == (200, {"Volumes": [], "Err": ""})
    await node.call("Create", {"Name": "db"})
    node.fake.fail.add("mount")
    assert (await node.call("Mount", {"Name": "db", "ID": "t"}))[0] == 500
    assert (await node.call("Get", {"Name": "db"}))[1]["Volume"]["Status"]["Mounts"] == "0"


async def test_volumes_and_their_users_survive_a_restart(node: Node) -> None:
    await node.call("Create", {"Name": "db"})
    await node.call("Create", {"Name": "idle"})
    await node.call("Create", {"Name": "cache", "Opts": {"driver": "local"}})
    await node.call("Mount", {"Name": "db", "ID": "task-1"})
    await node.call("Mount", {"Name": "cache", "ID": "task-1"})
    await node.restart()
    assert node.fake.mounted() == {"db"}  # recovered: in use again, nothing else
    names = [v["Name"] for v in (await node.call("List"))[1]["Volumes"]]
    assert names == ["cache", "db", "idle"]
    assert (await node.call("Remove", {"Name": "cache"}))[0] == 500
    await node.call("Unmount", {"Name": "db", "ID": "task-1"})
    assert node.fake.mounted() == set()
