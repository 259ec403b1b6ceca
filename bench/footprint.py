"""What Shoal costs a node: resident memory (VmRSS, as the peer measures it;
and PSS, which counts shared pages once) and CPU of each daemon —
manager, agent, netd, volumed, the SeaweedFS processes volumed runs (master,
volume server, filer), containerd and the containerd shims — summed over a
3-host lab (1 manager, 2 workers), idle and with 30 tasks a host.

    python -m bench.footprint [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from pathlib import Path

import aiohttp

from bench.managers_lab import api_url, lab_connector, request
from bench.suite import Figures, print_summary
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.services import service_pid
from lab.spec import HostSpec, LabSpec

DAEMONS = ("manager", "agent", "netd", "volumed", "containerd")
SETTLE_SECONDS = 10.0  # after a change, as the peer waits
CPU_WINDOW = 10.0
TICKS = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages split among the processes that map
    them. RSS counts the 150 MB weed binary once per weed process (and
    libpython once per daemon); PSS counts it once in all."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def shims_of(host: HostSpec) -> list[int]:
    """containerd-shim processes serving this host's containerd."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not (proc / "comm").read_text().startswith("containerd-shim"):
                continue
            if str(host.containerd_socket) in (proc / "cmdline").read_bytes().decode(
                errors="replace"
            ):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def children_of(parents: set[int]) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in parents:
            found.append(int(proc.name))
    return found


def processes(lab: LabSpec) -> dict[str, list[int]]:
    by_kind: dict[str, list[int]] = {kind: [] for kind in (*DAEMONS, "seaweedfs", "shims")}
    for host in lab.all_hosts():
        for kind in DAEMONS:
            pid = service_pid(lab, f"{host.name}/{kind}")
            if pid is not None:
                by_kind[kind].append(pid)
        by_kind["shims"] += shims_of(host)
    by_kind["seaweedfs"] = children_of(set(by_kind["volumed"]))
    return by_kind


def sample(lab: LabSpec, mode: str) -> Figures:
    pids = processes(lab)
    before = {p: cpu_seconds(p) for group in pids.values() for p in group}
    time.sleep(CPU_WINDOW)
    figures: Figures = {}
    total_cpu = 0.0
    for kind, group in pids.items():
        alive = [p for p in group if Path(f"/proc/{p}").exists()]
        figures[f"{mode}_{kind}_mib"] = sum(rss_mib(p) for p in alive)
        cpu = sum(cpu_seconds(p) - before.get(p, 0.0) for p in alive) / CPU_WINDOW * 100
        figures[f"{mode}_{kind}_cpu_pct"] = cpu
        total_cpu += cpu
    daemons = ("manager", "agent", "netd", "volumed", "seaweedfs")
    figures[f"{mode}_daemon_mib"] = sum(figures[f"{mode}_{k}_mib"] for k in daemons)
    figures[f"{mode}_total_mib"] = sum(figures[f"{mode}_{k}_mib"] for k in pids)
    alive_pids = [p for group in pids.values() for p in group if Path(f"/proc/{p}").exists()]
    figures[f"{mode}_seaweedfs_pss_mib"] = sum(pss_mib(p) for p in pids["seaweedfs"])
    figures[f"{mode}_total_pss_mib"] = sum(pss_mib(p) for p in alive_pids)
    figures[f"{mode}_total_cpu_pct"] = total_cpu
    return figures


async def start_tasks(lab: LabSpec, replicas: int) -> None:
    api = api_url(lab, 1)
    spec = {
        "Name": "fp",
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {
            "ContainerSpec": {"Image": busybox_reference(lab), "Command": ["sleep", "1d"]}
        },
    }
    async with aiohttp.ClientSession(connector=lab_connector(lab)) as session:
        await request(session, "POST", f"{api}/services/create", json=spec)
        deadline = time.monotonic() + 300
        while True:
            _, services = await request(session, "GET", f"{api}/services?status=1")
            if services and services[0]["ServiceStatus"]["RunningTasks"] == replicas:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the 90 tasks did not start")
            await asyncio.sleep(0.5)


def measure(runs: int) -> list[Figures]:
    """The suite's entry: a fresh lab each run."""
    figures = []
    for _ in range(max(runs, 1)):
        name = f"bf{secrets.token_hex(2)}"
        lab = lab_up(name, 3, created_by="bench", managers=1)
        try:
            time.sleep(SETTLE_SECONDS)
            run = sample(lab, "idle")
            asyncio.run(start_tasks(lab, 90))
            time.sleep(SETTLE_SECONDS)
            run |= sample(lab, "tasks30")
            figures.append(run)
        finally:
            lab_down(name)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    print_summary("footprint", measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()
