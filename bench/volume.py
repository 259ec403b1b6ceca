"""Distributed volumes against local ones, inside a container: sequential
write and read MB/s and a 1,000-small-file create rate.

    python -m bench.volume [--runs 3] [--mib 256]

On a 3-host lab (1 manager), one service task on host 2 mounts the volume:
a `shoal` volume (replication 001: every chunk is written to two hosts) or a
`local` one. The writer task writes --mib MiB with dd (conv=fsync: on the
disk or the volume servers, not in the page cache) and creates 1,000 small
files; then the machine's page cache is dropped and a second task, with a
fresh mount, reads the big file back with dd. Times come from /proc/uptime
inside the container (10 ms steps). Asserts nothing.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import time
from pathlib import Path

from bench.lab_docker import docker
from bench.suite import Figures, print_summary
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.spec import LabSpec

SMALL_FILES = 1000
MIB = 1 << 20
DEADLINE = 300.0


def timed(label: str, command: str) -> str:
    """Shell that runs `command` and prints `<label> <start> <end>` (uptime
    seconds: the image's busybox dd prints no rate)."""
    return f"read s _ < /proc/uptime; {command}; read e _ < /proc/uptime; echo {label} $s $e"


def writer_script(mib: int) -> str:
    small = (
        f"mkdir -p /data/small; i=0; while [ $i -lt {SMALL_FILES} ]; "
        "do echo x > /data/small/$i; i=$((i+1)); done; sync"
    )
    write = f"dd if=/dev/zero of=/data/big bs=1M count={mib} conv=fsync 2>/dev/null"
    return f"{timed('write', write)}; {timed('small', small)}; echo done"


READER_SCRIPT = f"{timed('read', 'dd if=/data/big of=/dev/null bs=1M 2>/dev/null')}; echo done"


def run_task(lab: LabSpec, name: str, mount: str, script: str) -> str:
    """One task on host 2 until it prints `done`; its output."""
    docker(
        lab, "service", "create", "--detach", "--name", name, "--restart-condition", "none",
        "--constraint", f"node.hostname=={lab.host(2).hostname}", "--mount", mount,
        busybox_reference(lab), "sh", "-c", script,
    )  # fmt: skip
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            out = docker(lab, "service", "logs", "--raw", name)
            if "done" in out.split():
                return out
            time.sleep(0.5)
        raise RuntimeError(f"{name} did not finish in {DEADLINE:.0f}s")
    finally:
        docker(lab, "service", "rm", name)


def seconds(output: str, label: str) -> float:
    for line in output.splitlines():
        if line.startswith(f"{label} "):
            _, start, end = line.split()
            return max(float(end) - float(start), 0.01)  # /proc/uptime counts in 10 ms
    raise RuntimeError(f"no {label} figure in: {output.strip()[:200]}")


def drop_page_cache() -> None:
    # The reader must fetch the data: from the disk, or from the volume servers.
    subprocess.run(["sync"], check=True, timeout=60)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def one_driver(lab: LabSpec, driver: str, mib: int) -> Figures:
    volume = f"bench-{driver}-{secrets.token_hex(3)}"
    docker(lab, "volume", "create", "-d", driver, volume)
    mount = f"type=volume,source={volume},target=/data"
    try:
        written = run_task(lab, f"vw-{volume}", mount, writer_script(mib))
        drop_page_cache()
        read = run_task(lab, f"vr-{volume}", mount, READER_SCRIPT)
    finally:
        for _ in range(20):  # the mount goes when the task's container has stopped
            try:
                docker(lab, "volume", "rm", volume)
                break
            except RuntimeError:
                time.sleep(0.5)
    return {
        f"{driver}_write_MBps": mib * MIB / 1e6 / seconds(written, "write"),
        f"{driver}_read_MBps": mib * MIB / 1e6 / seconds(read, "read"),
        f"{driver}_small_files_per_s": SMALL_FILES / seconds(written, "small"),
    }


def one_run(lab: LabSpec, mib: int) -> Figures:
    figures = one_driver(lab, "local", mib) | one_driver(lab, "shoal", mib)
    for what in ("write_MBps", "read_MBps", "small_files_per_s"):
        figures[f"ratio_{what}"] = figures[f"shoal_{what}"] / figures[f"local_{what}"]
    return figures


def measure(runs: int, mib: int = 256) -> list[Figures]:
    """The suite's entry: a fresh 3-host lab, `runs` rounds of both drivers."""
    name = f"bv{secrets.token_hex(2)}"
    lab = lab_up(name, 3, created_by="bench", managers=1)
    try:
        return [one_run(lab, mib) for _ in range(max(runs, 1))]
    finally:
        lab_down(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256, help="size of the sequential file")
    args = parser.parse_args()
    print_summary("volume", measure(args.runs, args.mib))


if __name__ == "__main__":
    main()
