"""`kill -9` of `lab up` half way, then `lab down`: nothing of the lab remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.lifecycle import lab_down, lab_root
from lab.system import process_alive
from tests.lab.helpers import CLUSTERCTL, clusterctl, lab_pids, leftovers
from tests.lab_fixtures import new_lab_name

pytestmark = pytest.mark.lab


def recorded(directory: Path) -> list[dict[str, str]]:
    try:
        lines = (directory / "record.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.endswith("}")]


KILL_POINTS: dict[str, Callable[[Path], bool]] = {
    # some namespaces exist, links are being made
    "namespaces": lambda d: {"netns": "shoal-" + d.name + "-h2"} in recorded(d),
    # every host namespace exists, the mount and UTS namespaces are being bound
    "host-namespaces": lambda d: any(e.get("mount", "").endswith("h2.mnt") for e in recorded(d)),
    # the supervisor runs and containerds are starting
    "supervisor": lambda d: (d / "supervisor.pid").exists() and (d / "h1/containerd.log").exists(),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_9_of_lab_up_then_lab_down_leaves_nothing(point: str) -> None:
    name = new_lab_name()
    directory = lab_root() / name
    up = subprocess.Popen(
        [CLUSTERCTL, "lab", "up", "--name", name, "--hosts", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not KILL_POINTS[point](directory):
            assert up.poll() is None, f"lab up ended (status {up.returncode}) before {point}"
            assert time.monotonic() < deadline, f"lab up never reached {point}"
            time.sleep(0.001)
        assert up.poll() is None, "lab up finished before it could be killed half way"
        os.kill(up.pid, signal.SIGKILL)
        up.wait(10)
        pids = lab_pids(name)
        assert leftovers(name), "the kill left nothing to clean: the test proves nothing"

        down = clusterctl("lab", "down", name)
        assert down.returncode == 0, down.stderr
        assert leftovers(name) == []
        assert not [p for p in pids if process_alive(p)]  # zombies wait for init; they are dead
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
        lab_down(name)
