"""Fixtures shared by every tier; the lab fixtures live in tests/lab_fixtures.py."""

pytest_plugins = ["tests.lab_fixtures"]
