"""Fixtures the CLI tests share: one in-process cluster a module, and a
clusterctl configuration directory of each test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.component.cli_cluster import InProcessCluster, in_process_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessCluster]:
    with in_process_cluster(tmp_path_factory.mktemp("cluster")) as made:
        yield made


@pytest.fixture
def clusterctl_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """clusterctl must not read or write the real ~/.config/clusterctl."""
    monkeypatch.setenv("CLUSTERCTL_CONFIG", str(tmp_path / "clusterctl"))
    monkeypatch.delenv("CLUSTERCTL_CONTEXT", raising=False)
    return tmp_path / "clusterctl"
