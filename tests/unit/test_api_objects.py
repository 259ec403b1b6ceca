"""Task states, errors, constraints, times and IDs of the object model."""

from __future__ import annotations

import re

import pytest

from api import errors
from api.constraints import Constraint, parse_constraint
from api.objects import TaskState, format_time, new_id, parse_time


def test_task_states_have_swarmkit_values_and_order() -> None:
    assert {s.to_json(): int(s) for s in TaskState} == {
        "new": 0,
        "pending": 64,
        "allocated": 128,
        "assigned": 192,
        "accepted": 256,
        "preparing": 320,
        "ready": 384,
        "starting": 448,
        "running": 512,
        "complete": 576,
        "shutdown": 640,
        "failed": 704,
        "rejected": 768,
        "remove": 800,
        "orphaned": 832,
    }
    lifecycle = ["new", "pending", "assigned", "accepted", "preparing", "ready", "starting"]
    lifecycle += ["running", "complete", "shutdown", "failed", "rejected", "remove", "orphaned"]
    states = [TaskState.from_json(name) for name in lifecycle]
    assert states == sorted(states)
    assert [s.to_json() for s in states] == lifecycle
    assert max(TaskState.SHUTDOWN, TaskState.REMOVE) is TaskState.REMOVE


def test_task_state_names() -> None:
    assert TaskState.from_json("RUNNING") is TaskState.RUNNING
    assert not TaskState.RUNNING.is_terminal and TaskState.FAILED.is_terminal
    with pytest.raises(errors.InvalidArgument, match="invalid task state 'sleeping'"):
        TaskState.from_json("sleeping")


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.InvalidArgument, 400),
        (errors.Unauthorized, 401),
        (errors.Forbidden, 403),
        (errors.NotFound, 404),
        (errors.Conflict, 409),
        (errors.NotImplemented_, 501),
        (errors.Unavailable, 503),
    ],
)
def test_errors_carry_status_and_message(cls: type[errors.ApiError], status: int) -> None:
    err = cls("boom")
    assert (err.status, err.message, str(err)) == (status, "boom", "boom")
    assert err.body() == b'{"message":"boom"}'
    assert type(errors.error_for_status(status, "boom")) is cls


def test_out_of_sequence_is_a_500_with_swarmkits_text() -> None:
    err = errors.OutOfSequence()
    assert err.status == 500
    assert err.message == "rpc error: code = Unknown desc = update out of sequence"
    assert isinstance(errors.error_for_status(500, err.message), errors.OutOfSequence)
    assert type(errors.error_for_status(500, "other")) is errors.ApiError


def test_lookup_messages() -> None:
    assert errors.not_found("service", "web").message == "service web not found"
    amb = errors.ambiguous("service", "ab", 2)
    assert (amb.status, amb.message) == (400, "service ab is ambiguous (2 matches found)")


def test_constraints_parse_and_match_case_insensitively() -> None:
    c = parse_constraint(" node.labels.zone == EU-1 ")
    assert c == Constraint("node.labels.zone", "==", "EU-1")
    assert c.matches("eu-1") and not c.matches("us-1") and not c.matches()
    ne = parse_constraint("node.role!=manager")
    assert ne.matches("worker") and not ne.matches("Manager")
    with pytest.raises(errors.InvalidArgument, match="value 'a!=b' is invalid"):
        parse_constraint("node.role==a!=b")


def test_times_are_rfc3339nano_utc() -> None:
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1_500_000_000) == "1970-01-01T00:00:01.5Z"
    ns = parse_time("2024-05-06T07:08:09.123456789Z")
    assert format_time(ns) == "2024-05-06T07:08:09.123456789Z"
    assert parse_time("2024-05-06T09:08:09+02:00") == parse_time("2024-05-06T07:08:09Z")
    assert format_time(parse_time("0001-01-01T00:00:00Z")) == "0001-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="invalid RFC3339"):
        parse_time("yesterday")


def test_ids_are_25_char_base36() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-z]{25}", i) for i in ids)
