"""Reading the machine: namespaces, links, routes, mounts and processes.

Thin wrappers over iproute2's JSON output and /proc; no decisions are made here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

NETNS_DIR = Path("/run/netns")


class CommandError(RuntimeError):
    """A system command failed; the message carries its stderr."""


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise CommandError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{' '.join(argv)}: timed out after {timeout:.0f}s") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise CommandError(f"{' '.join(argv)}: {detail[-1] if detail else done.returncode}")
    return done.stdout


def ip(netns: str | None, *args: str, check: bool = True) -> str:
    prefix = ["ip"] if netns is None else ["ip", "-n", netns]
    return run([*prefix, *args], check=check)


def plain_bridging(netns: str) -> None:
    """Bridge netfilter off in `netns`; `-e`: a machine without `br_netfilter`
    has no such keys, and nothing to turn off."""
    keys = ("iptables", "ip6tables", "arptables")
    settings = [f"net.bridge.bridge-nf-call-{key}=0" for key in keys]
    run(["ip", "netns", "exec", netns, "sysctl", "-qew", *settings])


def list_netns() -> frozenset[str]:
    try:
        return frozenset(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return frozenset()


def root_links() -> frozenset[str]:
    return frozenset(link["ifname"] for link in json.loads(ip(None, "-j", "link", "show") or "[]"))


def root_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination this machine routes, except the default route."""
    routes: list[ipaddress.IPv4Network] = []
    for route in json.loads(ip(None, "-j", "-4", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "default")
        if dst == "default" or route.get("type") in ("multicast", "broadcast"):
            continue
        try:
            routes.append(ipaddress.IPv4Network(dst, strict=False))
        except ValueError:
            continue
    return routes


def mount_points() -> tuple[str, ...]:
    """Mount points of this mount namespace, in mount order."""
    points: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            # The mount point is the 5th field, with spaces escaped as \040.
            points.append(line.split()[4].replace("\\040", " "))
    return tuple(points)


def namespace_ids(paths: Iterable[Path]) -> set[tuple[int, int]]:
    ids: set[tuple[int, int]] = set()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        ids.add((st.st_dev, st.st_ino))
    return ids


def pids_in_namespaces(ns_files: Iterable[Path]) -> set[int]:
    """PIDs whose network, mount or UTS namespace is one of `ns_files`."""
    wanted = namespace_ids(ns_files)
    if not wanted:
        return set()
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        for kind in ("net", "mnt", "uts"):
            try:
                st = (entry / "ns" / kind).stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in wanted:
                found.add(int(entry.name))
                break
    found.discard(os.getpid())
    return found


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


CGROUP_ROOT = Path("/sys/fs/cgroup")


def lab_cgroup_name(lab: str) -> str:
    return f"shoal-{lab}"


def cgroup_dirs(lab: str) -> tuple[str, ...]:
    """Every cgroup directory of the lab in every hierarchy, parents first."""
    found: list[str] = []
    for hierarchy in sorted(CGROUP_ROOT.iterdir()) if CGROUP_ROOT.is_dir() else []:
        top = hierarchy / lab_cgroup_name(lab)
        if not top.is_dir():
            continue
        for dirpath, _dirnames, _files in os.walk(top):
            found.append(dirpath)
    return tuple(found)


def pids_in_cgroups(dirs: Iterable[str]) -> set[int]:
    pids: set[int] = set()
    for directory in dirs:
        try:
            text = Path(directory, "cgroup.procs").read_text(encoding="utf-8")
        except OSError:
            continue
        pids.update(int(line) for line in text.split())
    pids.discard(os.getpid())
    return pids
