"""The bench suite's bookkeeping: the peer's lines become figures under
Shoal's names, and medians line up with their ratio."""

from __future__ import annotations

from bench.peer import by_rep, converge_figures, footprint_runs, parse_lines, start_figures
from bench.suite import summarize, table_lines

CONVERGE = """\
converge rep=1 R=3 create_cli=6.030 create_ps=1.065 create_last=0.802 scale_cli=6.062 \
scale_ps=0.716 scale_last=0.681 update_cli=8.992 update_ps=3.924 update_last=3.716 \
rm_cli=0.047 rm_gone=3.026
converge rep=1 R=30 create_ps=5.960 scale_ps=5.910 update_ps=22.503 rm_gone=6.812
converge rep=2 R=3 create_ps=1.005 scale_ps=0.934 update_ps=3.988 rm_gone=2.867
"""


def test_peer_lines_become_one_figures_per_rep() -> None:
    runs = by_rep(parse_lines(CONVERGE, "converge"), converge_figures)
    assert len(runs) == 2
    assert runs[0]["create_3"] == 1.065 and runs[0]["rm_30"] == 6.812
    assert runs[1] == {"create_3": 1.005, "scale_3": 0.934, "update_3": 3.988, "rm_3": 2.867}


def test_start_and_footprint_figures() -> None:
    rows = parse_lines(
        "start mode=docker rep=1 s=0.425 rc=0\nstart mode=ctr rep=1 s=0.2\n", "start"
    )
    assert by_rep(rows, start_figures) == [{"full_cycle_s": 0.425, "ctr_s": 0.2}]
    text = "".join(
        f"footprint host=h{h} mode={m} dockerd_mib=80 containerd_mib=30 shims_mib=0 total_mib=110\n"
        for m in ("idle", "tasks30")
        for h in (1, 2, 3)
    )
    (run,) = footprint_runs(text)
    assert run["idle_total_mib"] == 330 and run["tasks30_daemon_mib"] == 240


def test_medians_and_the_ratio_to_swarm() -> None:
    ours = summarize([{"create_3": 1.0}, {"create_3": 3.0}, {"create_3": 2.0}])
    theirs = summarize([{"create_3": 4.0}])
    assert (ours["create_3"].median, ours["create_3"].low, ours["create_3"].high) == (2.0, 1.0, 3.0)
    (line,) = table_lines("converge", ours, theirs)
    assert "shoal/swarm   0.50x" in line
