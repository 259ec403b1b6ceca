"""`clusterctl image build|push|pull|ls|rm` against a lab (1 manager, 1
worker): the context goes to a node's agent, which builds; images reach the
other node through the registry, and a service runs the built image."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from testcontainers.core.container import DockerContainer

from lab.configs import docker_tls_args
from lab.spec import LabSpec
from tests.lab.docker_peer import docker_daemon, no_reaper
from tests.lab.helpers import clusterctl, lab_in_context

pytestmark = pytest.mark.lab
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web"


@pytest.fixture(scope="module")
def cluster(_labs_cleaned_up: None) -> Iterator[LabSpec]:
    with lab_in_context(2, managers=1) as lab:
        yield lab


def ok(*args: str) -> str:
    done = clusterctl(*args, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_build_push_pull_and_run_the_demo_image(cluster: LabSpec) -> None:
    registry = cluster.registry_address
    image = f"{registry}/demo/web:1"
    h1, h2 = cluster.host(1).hostname, cluster.host(2).hostname
    built = ok(
        "image", "build", "-t", image, "--build-arg", f"REGISTRY={registry}",
        "--node", h1, str(EXAMPLE),
    )  # fmt: skip
    assert "Step 1/" in built and f"Successfully tagged {image}" in built
    again = ok(
        "image", "build", "-t", image, "--build-arg", f"REGISTRY={registry}",
        "--node", h1, str(EXAMPLE),
    )  # fmt: skip
    assert again.count("Using cache") >= 3  # COPY, COPY, RUN: nothing changed
    ok("image", "push", "--node", h1, image)
    ok("image", "pull", "--node", h2, image)
    listed = json.loads(ok("image", "ls", "--node", h2, "--format", "json"))
    assert any(image in i["RepoTags"] for i in listed)

    docker = ["/usr/bin/docker", *docker_tls_args(cluster, cluster.host(1))]
    subprocess.run(
        [*docker, "service", "create", "--detach", "--name", "demo", "--publish", "8088:80",
         "--constraint", f"node.hostname=={h2}", image],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    page = ""
    while not page.startswith("hello from task"):
        assert time.monotonic() < deadline, f"the built image does not serve its page: {page!r}"
        try:
            with urllib.request.urlopen(f"http://{cluster.host(1).address}:8088/", timeout=3) as r:
                page = r.read().decode()
        except OSError:
            time.sleep(0.5)
    subprocess.run([*docker, "service", "rm", "demo"], check=True, capture_output=True)
    deadline = time.monotonic() + 30
    while clusterctl("image", "rm", "--node", h2, image).returncode != 0:
        assert time.monotonic() < deadline, "the image stayed in use"
        time.sleep(0.5)
    listed = json.loads(ok("image", "ls", "--node", h2, "--format", "json"))
    assert not any(image in i["RepoTags"] for i in listed)


def test_a_failing_build_is_one_line_and_exit_1(cluster: LabSpec, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {cluster.registry_address}/library/busybox:latest\nRUN echo nope; exit 3\n"
    )
    done = clusterctl("image", "build", "-t", "broken:1", str(tmp_path), timeout=120)
    assert done.returncode == 1
    assert "returned a non-zero code: 3" in done.stderr
    (tmp_path / "Dockerfile").write_text("FROM scratch\nFROBNICATE now\n")
    done = clusterctl("image", "build", "-t", "broken:1", str(tmp_path), timeout=120)
    assert done.returncode == 1 and "2" in done.stderr and "FROBNICATE" in done.stderr.upper()
    unknown = clusterctl("image", "ls", "--node", "nosuchnode")
    assert unknown.returncode == 1 and "no ready node 'nosuchnode'" in unknown.stderr


def test_stock_docker_runs_an_image_shoal_built(cluster: LabSpec, tmp_path: Path) -> None:
    registry = cluster.registry_address
    image = f"{registry}/test/hello:1"
    (tmp_path / "Dockerfile").write_text(
        f"FROM {registry}/library/busybox:latest\n"
        "COPY greeting /greeting\n"
        "ENV WHO=docker\n"
        'CMD ["sh", "-c", "cat /greeting; echo $WHO"]\n'
    )
    (tmp_path / "greeting").write_text("built by shoal, run by\n")
    ok("image", "build", "-t", image, str(tmp_path))
    ok("image", "push", image)
    no_reaper()
    with docker_daemon(Path("/tmp") / f"shoal-peer-{cluster.name}", registry) as host:
        os.environ["DOCKER_HOST"] = host
        try:
            container = DockerContainer(image)
            container.start()
            try:
                deadline = time.monotonic() + 60
                while container.get_wrapped_container().reload() or (
                    container.get_wrapped_container().status != "exited"
                ):
                    assert time.monotonic() < deadline, "the container did not finish"
                    time.sleep(0.2)
                stdout, _ = container.get_logs()
            finally:
                container.stop()
        finally:
            os.environ.pop("DOCKER_HOST", None)
    assert stdout.decode() == "built by shoal, run by\ndocker\n"
