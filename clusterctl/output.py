"""Tables and JSON the way the docker CLI prints them: plain aligned columns."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table


def console() -> Console:
    # Without a terminal, never wrap: scripts parse these lines.
    return Console(width=None if sys.stdout.isatty() else 1000, highlight=False)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(box=None, pad_edge=False, padding=(0, 3, 0, 0), show_edge=False)
    for header in headers:
        table.add_column(header.upper(), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console().print(table)


def print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def status_line(message: str) -> None:
    """Progress for people: on stderr, so stdout stays machine-readable."""
    click.echo(message, err=True)
