"""Placement constraints: `key==value` or `key!=value`, nothing else.

The parser backs spec validation; the scheduler matches nodes with
`Constraint.matches`. Values compare case-insensitively, as swarm does."""

from __future__ import annotations

import re
from typing import NamedTuple

from api.errors import InvalidArgument

OPERATORS = ("==", "!=")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# Operator characters may not hide in a value: "a==b!=c" is a mistake, not a value.
_FORBIDDEN_IN_VALUE = re.compile(r"[=!<>~]")
_RPC_INVALID = "rpc error: code = InvalidArgument desc = "


class Constraint(NamedTuple):
    key: str  # e.g. node.role, node.labels.zone, engine.labels.os
    operator: str  # "==" or "!="
    value: str

    def matches(self, *actual: str) -> bool:
        """Whether a node whose `key` has these values satisfies the constraint."""
        equal = any(self.value.casefold() == a.casefold() for a in actual)
        return equal if self.operator == "==" else not equal


def parse_constraint(expr: str) -> Constraint:
    """One constraint; InvalidArgument (400) with swarm's message if malformed."""
    for op in OPERATORS:
        if op in expr:
            key, value = (part.strip() for part in expr.split(op, 1))
            if not _KEY.fullmatch(key):
                raise InvalidArgument(f"{_RPC_INVALID}key '{key}' is invalid")
            if not value or _FORBIDDEN_IN_VALUE.search(value):
                raise InvalidArgument(f"{_RPC_INVALID}value '{value}' is invalid")
            return Constraint(key, op, value)
    raise InvalidArgument(
        f"{_RPC_INVALID}constraint expected one operator from {', '.join(OPERATORS)}"
    )


def parse_constraints(exprs: list[str]) -> list[Constraint]:
    return [parse_constraint(e) for e in exprs]
