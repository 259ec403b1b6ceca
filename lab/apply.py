"""Thin appliers: carry out the steps `lab.plan` decided, one system call each."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab import system
from lab.plan import (
    AddAddress,
    AddBridge,
    AddNetns,
    AddVethPair,
    DeleteLink,
    DeleteNetns,
    DownStep,
    KillProcesses,
    LinkUp,
    MakeDir,
    MakeHostNamespaces,
    PlainBridging,
    PrivateBindMount,
    RemoveCgroup,
    RemoveTree,
    SetMaster,
    StartSupervisor,
    Unmount,
    UpStep,
    WriteFile,
)
from lab.record import Record, entries_for

SUPERVISOR_PIDFILE = "supervisor.pid"
KILL_GRACE_SECONDS = 10.0


def apply_up_step(step: UpStep, record: Record | None) -> None:
    if record is not None:
        record.append(entries_for(step))
    match step:
        case MakeDir(path=path):
            path.mkdir(parents=True, exist_ok=True)
        case PrivateBindMount(path=path):
            system.run(["mount", "--bind", str(path), str(path)])
            system.run(["mount", "--make-private", str(path)])
        case AddNetns(name=name):
            system.run(["ip", "netns", "add", name])
        case AddBridge(netns=netns, name=name):
            system.ip(netns, "link", "add", name, "type", "bridge")
        case AddVethPair(netns=netns, name=name, peer_netns=peer_netns, peer_name=peer):
            system.ip(
                netns,
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                peer_netns,
            )
        case SetMaster(netns=netns, link=link, master=master):
            system.ip(netns, "link", "set", link, "master", master)
        case AddAddress(netns=netns, link=link, cidr=cidr):
            system.ip(netns, "addr", "add", cidr, "dev", link)
        case LinkUp(netns=netns, link=link):
            system.ip(netns, "link", "set", link, "up")
        case PlainBridging(netns=netns):
            system.plain_bridging(netns)
        case MakeHostNamespaces(mount_ns_file=mnt, uts_ns_file=uts, hostname=hostname):
            make_host_namespaces(mnt, uts, hostname)
        case WriteFile(path=path, content=content):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(content, encoding="utf-8")
            tmp.replace(path)
        case StartSupervisor(lab_directory=directory, switch_netns=netns):
            start_supervisor(directory, netns)


def make_host_namespaces(mount_ns_file: Path, uts_ns_file: Path, hostname: str) -> None:
    mount_ns_file.touch()
    uts_ns_file.touch()
    # Slave propagation: the host sees mounts made later in the machine's own
    # namespace (new /run/netns entries), but its own mounts stay inside it.
    script = (
        f"hostname {hostname} && mkdir -p /run/containerd && "
        "mount -t tmpfs -o mode=0711 shoal-lab /run/containerd"
    )
    system.run(
        [
            "unshare",
            f"--mount={mount_ns_file}",
            f"--uts={uts_ns_file}",
            "--propagation",
            "slave",
            "sh",
            "-c",
            script,
        ]
    )


def start_supervisor(lab_directory: Path, switch_netns: str) -> None:
    """Start the lab's supervisor inside the switch namespace, detached.

    Living in a lab namespace makes it findable by teardown even when the
    `lab up` that started it was killed before writing anything down.
    """
    log = open(lab_directory / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
    with log:
        subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{switch_netns}",
                "--",
                sys.executable,
                "-m",
                "lab.supervisor",
                str(lab_directory),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )


def apply_down_step(step: DownStep) -> None:
    match step:
        case KillProcesses(pids=pids):
            kill_processes(pids)
        case Unmount(path=path):
            system.run(["umount", "--lazy", path], check=False)
        case RemoveCgroup(path=path):
            remove_cgroup(Path(path))
        case DeleteLink(name=name):
            system.ip(None, "link", "del", name, check=False)
        case DeleteNetns(name=name):
            system.run(["ip", "netns", "del", name], check=False)
        case RemoveTree(path=path):
            shutil.rmtree(path, ignore_errors=True)


def remove_cgroup(path: Path, seconds: float = 10.0) -> None:
    """rmdir a cgroup. It stays busy while a process in it is still dying,
    or was started after the processes to kill were listed (a container's,
    say): those are killed, and the rmdir tried again for a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        _thaw(path)
        with contextlib.suppress(OSError):
            for line in (path / "cgroup.procs").read_text().split():
                _signal(int(line), signal.SIGKILL)
        time.sleep(0.1)


def _thaw(path: Path) -> None:
    """A process frozen in its cgroup never dies of SIGKILL. runc freezes a
    container while it signals all its processes; a runc killed halfway (the
    lab going down) leaves it frozen. Thaw it in both freezers."""
    with contextlib.suppress(ValueError):
        below = Path(*path.relative_to(system.CGROUP_ROOT).parts[1:])
        for state, thawed in (
            ("freezer/{}/freezer.state", "THAWED"),
            ("unified/{}/cgroup.freeze", "0"),
        ):
            with contextlib.suppress(OSError):
                (system.CGROUP_ROOT / state.format(below)).write_text(thawed)


def kill_processes(pids: tuple[int, ...], grace: float = KILL_GRACE_SECONDS) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(system.process_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if system.process_alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(system.process_alive(p) for p in pids):
        time.sleep(0.05)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
