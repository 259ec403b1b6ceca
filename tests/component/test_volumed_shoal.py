"""The shoal driver on real SeaweedFS processes (a master, two volume servers
so that replication 001 has its second copy, a filer) and real FUSE mounts.

Everything runs inside a network namespace this test creates: the test's own
thread enters it (setns) for the duration, so the weed processes it starts
and its HTTP calls to them never touch the machine's network. `nsenter --net`
semantics: the mount namespace stays the machine's, so the FUSE mounts are
visible to the test (and, in production, to containerd).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.unit.test_volumed_backend_contract import BackendContract, MakeBackend
from volumed.daemon import Volumed, VolumedConfig
from volumed.seaweed import (
    NodeLayout,
    ProcessSpec,
    Supervisor,
    node_processes,
    volume_argv,
    weed_binary,
)
from volumed.shoal import ShoalBackend, fuse_mountpoints

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not Path("/dev/fuse").exists(), reason="no /dev/fuse: FUSE mounts impossible"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and FUSE"),
]

MASTERS = ("127.0.0.1:9333",)
READY_SECONDS = 40.0
CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


@contextlib.contextmanager
def own_network_namespace() -> Iterator[str]:
    """This thread (the event loop's) inside a fresh namespace with only lo."""
    name = f"shoal-vtest-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield name
        finally:
            _setns(original)
    finally:
        os.close(original)
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def _undo_mounts(root: Path) -> None:
    """Teardown, even after a failure: detach the FUSE mounts under `root`
    first (a mount whose filer is gone hangs whoever walks into it), then end
    the weed mount processes by the PIDs they recorded."""
    mountinfo = Path("/proc/self/mountinfo").read_text()
    for mountpoint in fuse_mountpoints(mountinfo, root):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False, timeout=10)
    for pidfile in root.glob("*/**/run/mount-*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            if str(root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def sandbox() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="shoal-vt-"))  # short: unix socket paths
    try:
        with own_network_namespace():
            yield root
    finally:
        _undo_mounts(root)
        shutil.rmtree(root, ignore_errors=True)


async def wait_until_writable(replication: str = "001") -> None:
    """The master hands out a file id with this replication once enough volume
    servers have reported in (and grows the volumes for it)."""
    url = f"http://{MASTERS[0]}/dir/assign"
    async with asyncio.timeout(READY_SECONDS), aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                async with session.get(url, params={"replication": replication}) as reply:
                    if "fid" in await reply.json(content_type=None):
                        return
            await asyncio.sleep(0.3)


async def wait_for_filer() -> None:
    async with asyncio.timeout(READY_SECONDS), aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get("http://127.0.0.1:8888/") as reply:
                    if reply.status == 200:
                        return
            await asyncio.sleep(0.2)


def peer_volume_server(root: Path) -> ProcessSpec:
    """A second node's volume server: the other copy of replication 001."""
    peer = NodeLayout(root / "peer", "127.0.0.1", MASTERS, volume_port=8081)
    argv = volume_argv(weed_binary(), peer)
    return ProcessSpec("peer-volume", argv, root / "peer.log", (peer.data_dir / "volume",))


@contextlib.asynccontextmanager
async def supervised(specs: list[ProcessSpec]) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(specs)
    run = asyncio.create_task(supervisor.run())
    try:
        yield supervisor
    finally:
        await supervisor.stop()
        await asyncio.wait_for(run, 30)


# The backend contract, on a node's processes run by this test.


class TestShoalBackendContract(BackendContract):
    @pytest.fixture
    async def make_backend(self, sandbox: Path) -> AsyncIterator[MakeBackend]:
        layout = NodeLayout(sandbox / "node", "127.0.0.1", MASTERS, role="manager",
                            volume_size_limit_mb=64)  # fmt: skip
        specs = [*node_processes(weed_binary(), layout), peer_volume_server(sandbox)]
        backends: list[ShoalBackend] = []

        def make() -> ShoalBackend:
            backends.append(ShoalBackend(layout.data_dir, layout.filer_addr, weed_binary()))
            return backends[-1]

        async with supervised(specs):
            await wait_until_writable()
            await make().wait_for_filer(READY_SECONDS)
            yield make
            for backend in backends:
                for name in backend.mounted():
                    await backend._undo_mount(name)
                await backend.close()


# volumed itself, through its plugin socket.


async def call(socket: Path, operation: str, body: object = None) -> tuple[int, dict[str, Any]]:
    connector = aiohttp.UnixConnector(path=str(socket))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(f"http://volumed/VolumeDriver.{operation}", json=body) as reply,
    ):
        return reply.status, json.loads(await reply.read())


async def metrics(socket: Path) -> str:
    connector = aiohttp.UnixConnector(path=str(socket))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get("http://volumed/metrics") as reply,
    ):
        return await reply.text()


@contextlib.asynccontextmanager
async def running(config: VolumedConfig) -> AsyncIterator[Volumed]:
    async with Volumed(config) as volumed:
        run = asyncio.create_task(volumed.run())
        try:
            yield volumed
        finally:
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run


async def test_a_shoal_volume_keeps_its_data_across_mounts_and_a_volumed_restart(
    sandbox: Path,
) -> None:
    config = VolumedConfig(
        data_dir=sandbox / "volumed",
        socket_path=sandbox / "volumed.sock",
        masters=MASTERS,
        role="manager",
        volume_size_limit_mb=64,
    )
    sock = config.socket_path
    payload = os.urandom(3 * 1024 * 1024)  # a few chunks (2 MB each)
    async with supervised([peer_volume_server(sandbox)]):
        async with running(config):
            await wait_until_writable()
            await wait_for_filer()
            assert await call(sock, "Create", {"Name": "data", "Opts": {}}) == (200, {"Err": ""})
            status, reply = await call(sock, "Mount", {"Name": "data", "ID": "task-1"})
            assert status == 200, reply
            mountpoint = Path(reply["Mountpoint"])
            (mountpoint / "big.bin").write_bytes(payload)
            (mountpoint / "note.txt").write_text("written by task-1")
            assert await call(sock, "Unmount", {"Name": "data", "ID": "task-1"}) == (
                200,
                {"Err": ""},
            )
            assert not (mountpoint / "note.txt").exists()  # unmounted: an empty directory

            status, reply = await call(sock, "Mount", {"Name": "data", "ID": "task-2"})
            assert status == 200, reply
            assert (mountpoint / "note.txt").read_text() == "written by task-1"
            assert (mountpoint / "big.bin").read_bytes() == payload

            # Bad input, with clear errors.
            status, reply = await call(sock, "Mount", {"Name": "nosuch", "ID": "task-3"})
            assert status == 500 and "no such volume: nosuch" in reply["Err"]
            status, reply = await call(sock, "Remove", {"Name": "data"})
            assert status == 500 and "in use by task-2" in reply["Err"]
            status, reply = await call(sock, "Create", {"Name": "x1", "Opts": {"driver": "nfs"}})
            assert status == 500 and "unknown volume driver 'nfs'" in reply["Err"]
            opts = {"replication": "01"}
            status, reply = await call(sock, "Create", {"Name": "x2", "Opts": opts})
            assert status == 500 and "invalid replication '01'" in reply["Err"]

            text = await metrics(sock)
            assert 'swarm_volumed_seaweedfs_up{process="filer"} 1.0' in text
            assert 'swarm_volumed_mounts{driver="shoal"} 1.0' in text
            assert 'swarm_volumed_errors_total{operation="Mount"} 1.0' in text

        # volumed stopped its SeaweedFS processes but left task-2's mount in
        # place; the new volumed adopts it, and once its filer is back the
        # same mount serves the data again.
        assert mountpoint in fuse_mountpoints(Path("/proc/self/mountinfo").read_text(), sandbox)
        async with running(config):
            await wait_for_filer()
            assert (mountpoint / "note.txt").read_text() == "written by task-1"
            (mountpoint / "after.txt").write_text("after the restart")
            assert await call(sock, "Unmount", {"Name": "data", "ID": "task-2"}) == (
                200,
                {"Err": ""},
            )
            assert fuse_mountpoints(Path("/proc/self/mountinfo").read_text(), sandbox) == set()
            assert await call(sock, "Remove", {"Name": "data"}) == (200, {"Err": ""})
            assert await call(sock, "List", {}) == (200, {"Volumes": [], "Err": ""})
