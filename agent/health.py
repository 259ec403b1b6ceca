"""A task's health check (the spec's Healthcheck, as Docker's): which command,
how often, how long each may take, how many failures in a row make the task
unhealthy, and how long failures do not count after the start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECOND = 1_000_000_000


@dataclass(frozen=True)
class HealthCheck:
    argv: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0


def health_check(spec: dict[str, Any] | None) -> HealthCheck | None:
    """None when there is no check (absent, empty or NONE)."""
    test = list((spec or {}).get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        argv: tuple[str, ...] = ("/bin/sh", "-c", " ".join(str(t) for t in test[1:]))
    elif test[0] == "CMD":
        argv = tuple(str(t) for t in test[1:])
    else:  # an inherited bare command line
        argv = ("/bin/sh", "-c", " ".join(str(t) for t in test))
    if not argv:
        return None

    def seconds(key: str, default: float) -> float:
        value = int((spec or {}).get(key) or 0)
        return value / SECOND if value > 0 else default

    return HealthCheck(
        argv=argv,
        interval=seconds("Interval", 30.0),
        timeout=seconds("Timeout", 30.0),
        retries=int((spec or {}).get("Retries") or 0) or 3,
        start_period=seconds("StartPeriod", 0.0),
    )
