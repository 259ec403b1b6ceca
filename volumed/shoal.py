"""The `shoal` driver: a volume is a filer directory, /shoal/volumes/<name>,
FUSE-mounted on this node with one `weed mount` process per volume.

The mount processes run in their own session, so they outlive volumed: a
restarted volumed finds them (by the PID it recorded and the kernel's mount
table), keeps the ones still in use, and undoes the rest (`plan_recovery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from volumed.backend import BackendError
from volumed.model import Volume
from volumed.seaweed import (
    Launcher,
    ProcessSpec,
    direct,
    filer_path,
    mount_argv,
    start_process,
)

MOUNT_DEADLINE_SECONDS = 20.0
UNMOUNT_DEADLINE_SECONDS = 10.0
FILER_WAIT_SECONDS = 30.0  # after a (re)start, the filer may be starting too
FILER_TIMEOUT = aiohttp.ClientTimeout(total=10)


def fuse_mountpoints(mountinfo: str, under: Path) -> set[Path]:
    """SeaweedFS FUSE mount points below `under`, from /proc/self/mountinfo.

    Fields: id parent major:minor root mountpoint options ... - fstype source
    (spaces in paths are escaped as \\040)."""
    found = set()
    prefix = f"{under}/"
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 7 or " - " not in line:
            continue
        fstype = line.split(" - ", 1)[1].split(" ", 1)[0]
        mountpoint = fields[4].replace("\\040", " ")
        if fstype.startswith("fuse") and mountpoint.startswith(prefix):
            found.add(Path(mountpoint))
    return found


@dataclass(frozen=True, order=True)
class MountChange:
    action: str  # adopt | remount | unmount
    volume: str


def plan_recovery(in_use: set[str], mounted: set[str], serving: set[str]) -> list[MountChange]:
    """What a restarted volumed does with the mounts it finds.

    `mounted`: volumes with a FUSE mount in the kernel; `serving`: volumes
    with a live `weed mount` process. A mount whose process died answers
    "transport endpoint is not connected": it is undone and, if in use, made
    again."""
    changes = []
    for name in sorted(in_use | mounted | serving):
        healthy = name in mounted and name in serving
        if name in in_use:
            changes.append(MountChange("adopt" if healthy else "remount", name))
        else:
            changes.append(MountChange("unmount", name))
    return changes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_mount_of(pid: int, mountpoint: Path) -> bool:
    """Is PID (still) the weed mount serving `mountpoint`? PIDs get reused."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"mount" in argv and f"-dir={mountpoint}".encode() in argv


class ShoalBackend:
    def __init__(
        self,
        data_dir: Path,
        filer: str,
        weed: str,
        launcher: Launcher = direct,
    ) -> None:
        self.filer = filer  # host:port of the filer this node mounts from
        self.weed = weed
        self.launcher = launcher
        self.mount_root = data_dir / "mounts"
        self.run_dir = data_dir / "run"
        self.cache_root = data_dir / "cache"
        self.log_dir = data_dir / "logs"
        self._children: dict[str, asyncio.subprocess.Process] = {}
        self._session: aiohttp.ClientSession | None = None

    def path(self, volume: Volume) -> Path:
        return self.mount_root / volume.name

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"mount-{name}.pid"

    def _pid(self, name: str) -> int | None:
        try:
            pid = int(self._pidfile(name).read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and _is_mount_of(pid, self.mount_root / name) else None

    def _kernel_mounts(self) -> set[str]:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        return {p.name for p in fuse_mountpoints(mountinfo, self.mount_root)}

    def mounted(self) -> set[str]:
        return self._kernel_mounts()

    # The filer.
    async def _filer(
        self, method: str, path: str, tolerated: tuple[int, ...] = (404,), **params: str
    ) -> int:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=FILER_TIMEOUT)
        url = f"http://{self.filer}{path}"
        try:
            # No Content-Type: the filer takes a typed POST for an upload.
            request = self._session.request(
                method, url, params=params, skip_auto_headers=("Content-Type",)
            )
            async with request as reply:
                if reply.status >= 300 and reply.status not in tolerated:
                    text = (await reply.text()).strip()
                    raise BackendError(f"filer {method} {path}: {reply.status} {text}")
                return reply.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendError(f"filer {self.filer} unreachable: {exc!r}") from None

    async def create(self, volume: Volume) -> None:
        # Right after the node starts, its filer may still be coming up (it
        # waits for a master): a task then waits rather than fails.
        await self.wait_for_filer(FILER_WAIT_SECONDS)
        # 409: the directory exists (another node created the volume first).
        await self._filer("POST", f"{filer_path(volume.name)}/", (409,), op="mkdir")

    async def remove(self, volume: Volume) -> None:
        await self.unmount(volume)
        await self._filer("DELETE", filer_path(volume.name), recursive="true")

    # Mounts.
    async def mount(self, volume: Volume) -> Path:
        mountpoint = self.path(volume)
        if volume.name in self._kernel_mounts() and self._pid(volume.name) is not None:
            return mountpoint
        await self._undo_mount(volume.name)  # a stale one, if any
        await self.wait_for_filer(FILER_WAIT_SECONDS)
        if await self._filer("GET", f"{filer_path(volume.name)}/") == 404:
            raise BackendError(f"volume {volume.name}: no directory on the filer")
        mountpoint.mkdir(parents=True, exist_ok=True)
        cache = self.cache_root / volume.name
        argv = mount_argv(
            self.weed, self.filer, volume.name, mountpoint, volume.replication, self.run_dir, cache
        )
        log = self.log_dir / f"mount-{volume.name}.log"
        spec = ProcessSpec(f"mount:{volume.name}", argv, log, (cache, self.run_dir))
        # Its own session: a volumed that stops or dies leaves running
        # containers their data; the next volumed adopts the mount.
        process = await start_process(self.launcher(argv), spec, new_session=True)
        self._children[volume.name] = process
        self._pidfile(volume.name).write_text(str(process.pid))
        deadline = time.monotonic() + MOUNT_DEADLINE_SECONDS
        while volume.name not in self._kernel_mounts():
            if process.returncode is not None or time.monotonic() > deadline:
                await self._undo_mount(volume.name)
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise BackendError(f"weed mount of {volume.name} failed: {' | '.join(tail)}")
            await asyncio.sleep(0.05)
        return mountpoint

    async def unmount(self, volume: Volume) -> None:
        await self._undo_mount(volume.name)

    async def _undo_mount(self, name: str) -> None:
        """Stop the mount's process by PID (weed unmounts on SIGTERM, after
        flushing), then detach whatever is left of the mount."""
        mountpoint = self.mount_root / name
        pid = self._pid(name)
        child = self._children.pop(name, None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + UNMOUNT_DEADLINE_SECONDS
            while time.monotonic() < deadline:
                if (child.returncode is not None) if child else not _alive(pid):
                    break
                await asyncio.sleep(0.05)
            if child is not None and child.returncode is None:
                child.kill()
            elif child is None and _alive(pid) and _is_mount_of(pid, mountpoint):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if child is not None:
            await child.wait()  # reap it
        if name in self._kernel_mounts():
            # The process died without unmounting: detach lazily so that
            # nothing hangs on "transport endpoint is not connected".
            await _run("fusermount3", "-u", "-z", str(mountpoint))
        self._pidfile(name).unlink(missing_ok=True)

    async def wait_for_filer(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                await self._filer("GET", "/")
                return
            except BackendError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def recover(self, in_use: Collection[Volume]) -> None:
        if in_use:
            await self.wait_for_filer(FILER_WAIT_SECONDS)
        by_name = {v.name: v for v in in_use}
        pidfiles = self.run_dir.glob("mount-*.pid") if self.run_dir.exists() else []
        serving = {p.stem.removeprefix("mount-") for p in pidfiles}
        serving = {name for name in serving if self._pid(name) is not None}
        for change in plan_recovery(set(by_name), self._kernel_mounts(), serving):
            if change.action == "unmount":
                await self._undo_mount(change.volume)
            elif change.action == "remount":
                await self._undo_mount(change.volume)
                await self.mount(by_name[change.volume])

    async def close(self) -> None:
        # Mounts stay (see the module's doc); only our own HTTP session goes.
        self._children.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _run(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await asyncio.wait_for(process.wait(), UNMOUNT_DEADLINE_SECONDS)
