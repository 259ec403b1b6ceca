"""Helpers for lab tests: run the CLI and the docker client, wait, run
commands in hosts, list leftovers."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from clusterctl.contexts import Context, Contexts
from lab.configs import docker_tls_args, manager_address
from lab.lifecycle import lab_down, lab_root, lab_up
from lab.spec import LabSpec, netns_belongs_to_lab
from lab.system import (
    cgroup_dirs,
    list_netns,
    mount_points,
    pids_in_cgroups,
    process_alive,
    process_cmdline,
    root_links,
)

CLUSTERCTL = str(Path(sys.executable).parent / "clusterctl")
DOCKER = "/usr/bin/docker"  # Debian's docker.io client, API 1.41


def docker_on(
    lab: LabSpec, *args: str, host: int = 1, check: bool = True, timeout: float = 120
) -> str:
    """The stock docker CLI against a host's manager; its stdout and stderr."""
    done = subprocess.run(
        [DOCKER, *docker_tls_args(lab, lab.host(host)), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout + done.stderr


@contextlib.contextmanager
def lab_in_context(hosts: int, managers: int) -> Iterator[LabSpec]:
    """A fresh lab, made clusterctl's current context; down again at the end."""
    from tests.lab_fixtures import CREATED_BY, new_lab_name

    name = new_lab_name()
    try:
        made = lab_up(name, hosts, created_by=CREATED_BY, managers=managers)
        contexts = Contexts()
        contexts.save(Context(name, manager_address(made.host(1)), str(made.client_certs)))
        contexts.use(name)
        yield made
    finally:
        lab_down(name)


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def clusterctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLUSTERCTL, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def in_host(spec: LabSpec, host: str, *command: str, timeout: float = 30) -> str:
    done = clusterctl("lab", "exec", "--lab", spec.name, host, "--", *command, timeout=timeout)
    assert done.returncode == 0, f"{command} in {host}: {done.stderr}"
    return done.stdout


def lab_pids(name: str) -> set[int]:
    """Processes that belong to a lab: in its cgroups or naming its directory."""
    directory = str(lab_root() / name)
    pids = pids_in_cgroups(cgroup_dirs(name))
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and any(directory in arg for arg in process_cmdline(int(proc.name))):
            pids.add(int(proc.name))
    return {p for p in pids if process_alive(p)}


def leftovers(name: str) -> list[str]:
    """Everything of a lab that still exists on the machine; [] when it is gone."""
    directory = lab_root() / name
    found = [f"netns {n}" for n in list_netns() if netns_belongs_to_lab(n, name)]
    found += [f"link {link}" for link in root_links() if link == f"shl-{name}"]
    found += [f"mount {m}" for m in mount_points() if m.startswith(str(directory))]
    found += [f"cgroup {c}" for c in cgroup_dirs(name)]
    found += [f"process {p} {process_cmdline(p)}" for p in lab_pids(name)]
    if directory.exists():
        found.append(f"directory {directory}")
    return found
