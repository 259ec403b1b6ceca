"""A stock Docker daemon (Debian's dockerd) as a test peer: its own data and
exec roots, socket and containerd namespace, no bridge, no iptables, and the
lab's registry as an insecure one. Stopped by PID, its mounts and files removed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def docker_daemon(root: Path, registry: str) -> Iterator[str]:
    """Yields DOCKER_HOST for the daemon."""
    root.mkdir(parents=True, exist_ok=True)
    socket = root / "docker.sock"
    process = subprocess.Popen(
        [
            "dockerd",
            "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "docker.pid"),
            "-H", f"unix://{socket}",
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--insecure-registry", registry,
            "--containerd-namespace", "shoal-peer",
            "--containerd-plugins-namespace", "shoal-peer-plugins",
        ],
        stdout=(root / "dockerd.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(
            ["/usr/bin/docker", "-H", f"unix://{socket}", "version"],
            capture_output=True,
            check=False,
        ).returncode:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "dockerd.log").read_text()[-2000:]
                raise RuntimeError(f"dockerd did not start: {log}")
            time.sleep(0.3)
        yield f"unix://{socket}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            mountpoint = line.split()[1]
            if mountpoint.startswith(str(root)):
                subprocess.run(["umount", "-l", mountpoint], check=False)
        shutil.rmtree(root, ignore_errors=True)


def no_reaper() -> None:
    """testcontainers' reaper is an image from Docker Hub, out of reach here;
    the test removes what it starts itself."""
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
