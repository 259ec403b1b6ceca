"""The stock docker CLI, as the benchmarks drive a lab: against host 1's
manager, with the lab's client certificate."""

from __future__ import annotations

import subprocess

from lab.configs import docker_tls_args
from lab.spec import LabSpec

DOCKER = "/usr/bin/docker"


def docker(lab: LabSpec, *args: str) -> str:
    """Its stdout; a failure raises with docker's own message."""
    done = subprocess.run(
        [DOCKER, *docker_tls_args(lab, lab.host(1)), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {done.stderr.strip()}")
    return done.stdout
