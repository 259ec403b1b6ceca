"""Docker Swarm on the same machine: the peer's scripts (../shared/peer, used
as they are) run the same scenarios on network-namespace hosts with Debian's
docker.io, and print `scenario k=v ...` lines; here they become the suite's
figures, under the names Shoal's scenarios use, so the two line up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.suite import Figures, Measure

PEER_DIR = Path(__file__).resolve().parents[2] / "shared" / "peer"
SCRIPT_TIMEOUT = 3 * 3600


def parse_lines(text: str, kind: str) -> list[dict[str, str]]:
    """The `kind k=v ...` lines of a script's output, as dicts."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == kind:
            found.append(dict(w.split("=", 1) for w in words[1:] if "=" in w))
    return found


def by_rep(
    rows: list[dict[str, str]], figures: Callable[[dict[str, str]], Figures]
) -> list[Figures]:
    runs: dict[str, Figures] = {}
    for row in rows:
        runs.setdefault(row.get("rep", "1"), {}).update(figures(row))
    return list(runs.values())


def _number(row: dict[str, str], key: str) -> dict[str, float]:
    try:
        return {key: float(row[key])}
    except (KeyError, ValueError):
        return {}


def converge_figures(row: dict[str, str]) -> Figures:
    size = row["R"]
    pairs = {"create": "create_ps", "scale": "scale_ps", "update": "update_ps", "rm": "rm_gone"}
    return {f"{ours}_{size}": float(row[theirs]) for ours, theirs in pairs.items()}


def failover_figures(row: dict[str, str]) -> Figures:
    return {"leader_s": float(row["leader_s"]), "service_s": float(row["svc_ps_total"])}


def node_failure_figures(row: dict[str, str]) -> Figures:
    return {**_number(row, "down_s"), "resched_s": float(row["resched_s"])}


def overlay_figures(row: dict[str, str]) -> Figures:
    return {
        "overlay_gbps_1": float(row["overlay_gbps"]),
        "underlay_gbps_1": float(row["underlay_gbps"]),
        "ratio_1": float(row["ratio_gbps"]),
        "overlay_rtt_ms": float(row["overlay_rtt_ms"]),
        "underlay_rtt_ms": float(row["underlay_rtt_ms"]),
    }


def start_figures(row: dict[str, str]) -> Figures:
    names = {"docker": "full_cycle_s", "ctr": "ctr_s"}
    mode = row.get("mode", "")
    return {names[mode]: float(row["s"])} if mode in names else {}


def footprint_runs(text: str) -> list[Figures]:
    """Summed over the hosts, idle and with 30 tasks a host."""
    runs: list[Figures] = []
    for row in parse_lines(text, "footprint"):
        mode = "idle" if row["mode"] == "idle" else "tasks30"
        if mode == "idle" and row.get("host") == "h1":
            runs.append({})
        figures = runs[-1]
        for field, ours in (("dockerd_mib", "daemon_mib"), ("containerd_mib", "containerd_mib")):
            figures[f"{mode}_{ours}"] = figures.get(f"{mode}_{ours}", 0.0) + float(row[field])
        total = f"{mode}_total_mib"
        figures[total] = figures.get(total, 0.0) + float(row["total_mib"])
    return runs


def run_script(name: str, *args: str) -> str:
    script = PEER_DIR / name
    if not script.exists():
        raise RuntimeError(f"the peer's {script} is not there")
    done = subprocess.run(
        [str(script), *args],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"{name} failed ({done.returncode}): {tail}")
    return done.stdout


def _rows(
    script: str, kind: str, figures: Callable[[dict[str, str]], Figures], *args: str
) -> Callable[[int], list[Figures]]:
    def measure(runs: int) -> list[Figures]:
        return by_rep(parse_lines(run_script(script, str(runs), *args), kind), figures)

    return measure


def start_runs(runs: int) -> list[Figures]:
    rows = parse_lines(run_script("bench-start.sh", str(runs)), "start")
    return by_rep(rows, start_figures)


def footprint(runs: int) -> list[Figures]:
    return footprint_runs(run_script("bench-footprint.sh", str(runs)))


PEERS: dict[str, Measure] = {
    "converge": _rows("bench-converge.sh", "converge", converge_figures, "3", "30", "90"),
    "failover": _rows("bench-failover.sh", "failover", failover_figures),
    "node-failure": _rows("bench-nodefail.sh", "nodefail", node_failure_figures),
    "overlay": _rows("bench-overlay.sh", "overlay", overlay_figures),
    "start": start_runs,
    "footprint": partial(footprint),
}
