"""The benchmark suite: every scenario, --runs times each (default 3), each on
a fresh lab it brings up and takes down; then a table of medians with min and
max, and the same figures as JSON in bench/results/<timestamp>.json.

    python -m bench [--runs 3] [--only NAME ...] [--peer]      (or: make bench)

--peer also runs the scenarios the peer has (../shared/peer: Docker Swarm on
the same kind of lab, on this machine, in this same run) and prints
Shoal/Swarm for each figure they share. A scenario that fails prints why and
the suite goes on. Nothing here asserts anything about speed; CI never runs it.
"""

from __future__ import annotations

import argparse
import importlib
import traceback
from pathlib import Path

from bench.peer import PEERS
from bench.suite import Figures, Measure, Scenario, Stat, summarize, table_lines, write_results

RESULTS = Path(__file__).resolve().parent / "results"


def _module_measure(module: str) -> Measure:
    """Imported when the scenario runs: a failing import fails only it."""

    def measure(runs: int) -> list[Figures]:
        found: list[Figures] = importlib.import_module(f"bench.{module}").measure(runs)
        return found

    return measure


SECONDS = {"_s": "s", "create": "s", "scale": "s", "update": "s", "rm": "s"}
# name, module, what it measures, units by part of a figure's name
SCENARIOS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("converge", "converge", "3 hosts: create 3/30/90, scale 2x, rolling update, rm", SECONDS),
    ("failover", "failover", "3 managers: kill -9 the leader", SECONDS),
    ("node-failure", "node_failure", "1+2 hosts, 6 replicas: a worker's agent dies", SECONDS),
    ("scheduler", "scheduler", "1,000 simulated nodes, 10,000 tasks, one process", {"": "/s"}),
    ("store", "store", "3 managers, 16 clients: acknowledged writes", {"_s": "/s", "ms": "ms"}),
    ("overlay", "overlay", "iperf3 and ping, overlay vs underlay; VIP readiness",
     {"gbps": "Gbit/s", "ratio": "x", "ms": "ms", "us": "us", "_s": "s"}),
    ("start", "start", "container create-to-running vs ctr run", SECONDS),
    ("volume", "volume", "distributed vs local volume: MB/s and small files",
     {"ratio": "x", "MBps": "MB/s", "per_s": "/s"}),
    ("footprint", "footprint", "RSS and CPU per daemon, idle and 30 tasks a host",
     {"mib": "MiB", "pct": "%"}),
)  # fmt: skip


def scenarios() -> list[Scenario]:
    return [
        Scenario(name, what, units, _module_measure(module), PEERS.get(name))
        for name, module, what, units in SCENARIOS
    ]


def run_one(measure: Measure, runs: int, label: str) -> dict[str, Stat] | None:
    print(f"== {label}", flush=True)
    try:
        return summarize(measure(runs))
    except Exception as exc:  # a failed scenario says why; the suite goes on
        print(f"   {label} failed: {exc}", flush=True)
        traceback.print_exc()
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--peer", action="store_true", help="also run Docker Swarm's side")
    args = parser.parse_args()
    chosen = [s for s in scenarios() if not args.only or s.name in args.only]
    unknown = set(args.only) - {s.name for s in scenarios()}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    results: dict[str, dict[str, object]] = {}
    lines: list[str] = []
    for scenario in chosen:
        ours = run_one(scenario.measure, args.runs, f"{scenario.name}: {scenario.what}")
        theirs = None
        if args.peer and scenario.peer is not None:
            theirs = run_one(scenario.peer, args.runs, f"{scenario.name} on Docker Swarm")
        results[scenario.name] = {"shoal": ours, "swarm": theirs}
        if ours is not None:
            lines += table_lines(scenario.name, ours, theirs, scenario)
        else:
            lines.append(f"{scenario.name:13} failed (see above)")
    print(f"\nmedians [min..max] over {args.runs} run(s) each")
    print("\n".join(lines))
    print(f"\nwritten to {write_results(RESULTS, results)}")


if __name__ == "__main__":
    main()
