"""Tables and JSON the way the docker CLI prints them: plain aligned columns."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table

from api.base import parse_time


def console() -> Console:
    # Without a terminal, never wrap: scripts parse these lines.
    return Console(width=None if sys.stdout.isatty() else 1000, highlight=False)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(box=None, pad_edge=False, padding=(0, 3, 0, 0), show_edge=False)
    for header in headers:
        table.add_column(header.upper(), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    out = console()
    with out.capture() as captured:
        out.print(table)
    # The last column is padded like the others; docker's tables end each line at its text.
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


def print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def status_line(message: str) -> None:
    """Progress for people: on stderr, so stdout stays machine-readable."""
    click.echo(message, err=True)


def short_id(object_id: str, full: bool = False) -> str:
    """IDs in tables are 12 characters, as docker's; any unique prefix works as input."""
    return object_id if full else object_id[:12]


def print_ids(ids: Sequence[str]) -> None:
    """`-q`: whole IDs, one a line, for scripts (any prefix of them is accepted back)."""
    for object_id in ids:
        click.echo(object_id)


def ago(timestamp: str | None, now: float | None = None) -> str:
    """`5 minutes ago`, as docker's tables show a time."""
    seconds = _seconds_since(timestamp, now)
    if seconds is None:
        return ""
    return f"{human_duration(seconds)} ago"


def _seconds_since(timestamp: str | None, now: float | None) -> float | None:
    if not timestamp or timestamp.startswith("0001-"):
        return None
    try:
        nanos = parse_time(timestamp)
    except (ValueError, TypeError):
        return None
    return max(0.0, (time.time() if now is None else now) - nanos / 1e9)


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration: `Less than a second`, `About a minute`, `3 hours`."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} second{'s' if int(seconds) != 1 else ''}"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 2:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days"
    if days < 60:
        return f"{int(days / 7)} weeks"
    if days < 365 * 2:
        return f"{int(days / 30)} months"
    return f"{int(days / 365)} years"


def human_bytes(size: float) -> str:
    """`1.5GiB`, as docker's inspect --pretty shows memory."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.4g}{unit}"
        size /= 1024
    return f"{size}B"  # not reached


def print_fields(lines: Sequence[tuple[int, str, object]]) -> None:
    """`inspect --pretty`: `Name:  value` lines, indented by level, values aligned."""
    width = max((2 * level + len(label) for level, label, _ in lines), default=0) + 2
    for level, label, value in lines:
        if label == "-":  # a list item: ` - key=value`
            click.echo(" " * (2 * level) + f"- {value}")
            continue
        key = " " * (2 * level) + label + ":"
        click.echo(key if value is None else f"{key:<{width}}{value}")
