"""The benchmark suite's common ground: a scenario measures a number of runs
and returns one `Figures` (name -> value) per run; the suite prints medians
with min and max, beside Docker Swarm's where the peer has the scenario, and
writes the same as JSON. Nothing here asserts anything about speed.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

Figures = dict[str, float]
Measure = Callable[[int], list[Figures]]


@dataclass(frozen=True)
class Stat:
    median: float
    low: float
    high: float
    n: int

    def show(self) -> str:
        return f"{self.median:10.3f} [{self.low:.3f}..{self.high:.3f}]"


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str  # one line: what it measures
    units: dict[str, str]  # part of a figure's name -> its unit, for the table
    measure: Measure
    peer: Measure | None = None  # the same scenario on Docker Swarm


def summarize(runs: list[Figures]) -> dict[str, Stat]:
    """Per figure over the runs; a figure missing from a run is left out of it."""
    names: list[str] = []
    for figures in runs:
        names += [n for n in figures if n not in names]
    stats = {}
    for name in names:
        values = [f[name] for f in runs if name in f]
        stats[name] = Stat(statistics.median(values), min(values), max(values), len(values))
    return stats


def unit_of(scenario: Scenario | None, figure: str) -> str:
    if scenario is None:
        return ""
    matches = [u for part, u in scenario.units.items() if part in figure]
    return matches[0] if matches else ""


def table_lines(
    name: str,
    ours: dict[str, Stat],
    theirs: dict[str, Stat] | None = None,
    scenario: Scenario | None = None,
) -> list[str]:
    """One line a figure: Shoal's median [min..max], Swarm's, and Shoal/Swarm."""
    lines = []
    for figure, stat in ours.items():
        unit = unit_of(scenario, figure)
        line = f"{name:13} {figure:26} {unit:6} shoal {stat.show()}"
        peer = (theirs or {}).get(figure)
        if peer is not None:
            ratio = stat.median / peer.median if peer.median else float("nan")
            line += f"   swarm {peer.show()}   shoal/swarm {ratio:6.2f}x"
        lines.append(line)
    return lines


def print_summary(name: str, runs: list[Figures]) -> None:
    """For a scenario run on its own (python -m bench.<name>)."""
    print(f"\nmedians [min..max] over {len(runs)} run(s)")
    for line in table_lines(name, summarize(runs)):
        print(line)


def write_results(directory: Path, results: dict[str, dict[str, object]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2, default=lambda s: asdict(s)) + "\n")
    return path
