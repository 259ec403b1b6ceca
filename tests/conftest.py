"""Fixtures shared by every tier; the lab fixtures live in tests/lab_fixtures.py."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest_plugins = ["tests.lab_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    # clusterctl contexts written by tests (lab up) never touch the user's own.
    config_dir = tempfile.mkdtemp(prefix="clusterctl-tests-")
    os.environ["CLUSTERCTL_CONFIG"] = config_dir
    os.environ.pop("CLUSTERCTL_CONTEXT", None)
    config.add_cleanup(lambda: shutil.rmtree(config_dir, ignore_errors=True))
