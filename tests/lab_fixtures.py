"""Fixtures that give a test a running lab and always take it down again.

Each lab gets a fresh name (`t` + 6 hex digits) and the first free underlay, so
tests can run while the demo's lab is up. At session start, labs left behind by
an earlier run that was killed (its pytest process is gone) are removed.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import pytest

from lab.lifecycle import lab_down, lab_root, lab_up, list_labs, read_metadata
from lab.spec import LabSpec
from lab.system import process_alive

CREATED_BY = "pytest"

LabFactory = Callable[..., LabSpec]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # A CI timeout or `kill` sends SIGTERM: turn it into KeyboardInterrupt so
    # pytest unwinds and every fixture's teardown still runs.
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def _labs_cleaned_up() -> Iterator[None]:
    """Asked for by every lab fixture, so unit-only runs never touch the machine."""
    if os.geteuid() != 0:
        pytest.fail("the lab tests build network namespaces and must run as root")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    for name in list_labs():
        meta = read_metadata(lab_root() / name) or {}
        owner = int(str(meta.get("owner_pid", 0)))
        if meta.get("created_by") == CREATED_BY and not process_alive(owner):
            lab_down(name)
    yield
    signal.signal(signal.SIGTERM, previous)


def new_lab_name() -> str:
    return f"t{secrets.token_hex(3)}"


@pytest.fixture
def lab_factory(_labs_cleaned_up: None) -> Iterator[LabFactory]:
    """Call it with the number of hosts; every lab it made is removed afterwards."""
    made: list[str] = []

    def make(hosts: int = 3, **kw: object) -> LabSpec:
        name = new_lab_name()
        made.append(name)
        return lab_up(name, hosts, created_by=CREATED_BY, **kw)  # type: ignore[arg-type]

    try:
        yield make
    finally:
        for name in made:
            lab_down(name)


@contextmanager
def shared_lab(hosts: int) -> Iterator[LabSpec]:
    name = new_lab_name()
    try:
        yield lab_up(name, hosts, created_by=CREATED_BY)
    finally:
        lab_down(name)


@pytest.fixture(scope="module")
def lab3(_labs_cleaned_up: None) -> Iterator[LabSpec]:
    """One 3-host lab shared by the tests of a module."""
    with shared_lab(3) as lab:
        yield lab


@pytest.fixture(scope="module")
def lab2(_labs_cleaned_up: None) -> Iterator[LabSpec]:
    """One 2-host lab shared by the tests of a module."""
    with shared_lab(2) as lab:
        yield lab
