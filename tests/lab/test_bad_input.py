"""Bad input: one clear line on stderr, a non-zero exit, and nothing created."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from lab.lifecycle import lab_root
from lab.spec import LabSpec
from lab.system import list_netns, root_links, root_routes
from tests.lab.helpers import clusterctl

pytestmark = pytest.mark.lab


def machine_state() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    labs = frozenset(p.name for p in lab_root().iterdir()) if lab_root().exists() else frozenset()
    return list_netns(), root_links(), labs


@pytest.fixture
def unchanged_machine() -> Iterator[None]:
    before = machine_state()
    yield
    assert machine_state() == before, "a refused command created something"


def an_existing_route() -> str:
    """A /24 inside (or around) a route this machine really has."""
    route = next(r for r in root_routes() if r.prefixlen <= 30)
    return str(ipaddress.IPv4Network(f"{route.network_address}/24", strict=False))


def assert_one_line_error(args: list[str], expected: str) -> None:
    done = clusterctl(*args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.usefixtures("unchanged_machine")
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["lab", "up", "--hosts", "0", "--name", "tbad"], "--hosts must be at least 1"),
        (["lab", "up", "--hosts", "-2", "--name", "tbad"], "--hosts must be at least 1"),
        (["lab", "up", "--hosts", "three"], "'three' is not a valid integer"),
        (["lab", "up", "--name", "a b"], "invalid lab name 'a b'"),
        (["lab", "up", "--name", "a/b"], "invalid lab name 'a/b'"),
        (["lab", "up", "--name", "tbad", "--underlay", "198.18.0.1/24"], "invalid underlay"),
        (["lab", "exec", "--lab", "tnone", "h1", "--", "true"], "no lab named 'tnone'"),
        (["lab", "status", "tnone"], "no lab named 'tnone'"),
        (["lab", "down", "a/b"], "invalid lab name"),
        (["lab", "frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_input_is_refused_with_one_line(args: list[str], expected: str) -> None:
    assert_one_line_error(args, expected)


@pytest.mark.usefixtures("unchanged_machine")
def test_an_underlay_overlapping_an_existing_route_is_refused() -> None:
    subnet = an_existing_route()
    assert_one_line_error(
        ["lab", "up", "--name", "tbad", "--underlay", subnet], "overlaps the route"
    )


def test_exec_to_a_host_that_does_not_exist(lab3: LabSpec) -> None:
    before = machine_state()
    assert_one_line_error(
        ["lab", "exec", "--lab", lab3.name, "h7", "--", "true"], "has no host 'h7'"
    )
    assert_one_line_error(["lab", "up", "--name", lab3.name], "already exists")
    assert machine_state() == before
