"""The overlay's data path on a 2-host lab, against the underlay beneath it.

    python -m bench.overlay [--seconds 5] [--runs 1]

- TCP throughput with iperf3 between two containers on different hosts over
  an overlay network, and between the two hosts over the underlay, with one
  stream and with four (target: overlay >= 0.9x the underlay; Docker Swarm's
  overlay reached 0.76x with one stream on this machine);
- ping round-trip time added by the overlay (target <= 100 us; Swarm: 98 us);
- from a new task reaching `running` to it answering through its service's
  VIP from a container on another host (target <= 1 s).

iperf3 and ping run from the host's binaries inside the containers' network
namespaces: the packets take exactly the containers' path (veth, bridge,
VXLAN, underlay), and the container image needs no tools.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import subprocess
import time
from datetime import datetime

from bench.lab_docker import docker
from bench.suite import Figures, print_summary
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.spec import LabSpec
from lab.status import exec_argv

WEB = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]


def in_host(lab: LabSpec, host: int, argv: list[str], netns: str | None = None) -> list[str]:
    inner = ["ip", "netns", "exec", netns, *argv] if netns else argv
    return exec_argv(lab.name, f"h{host}", inner)


def tasks(lab: LabSpec, service: str) -> list[dict[str, str]]:
    out = docker(lab, "service", "ps", service, "--no-trunc", "--format", "{{json .}}")
    return [
        t
        for t in map(json.loads, out.splitlines())
        if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")
    ]


def wait_running(lab: LabSpec, service: str, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 120
    while len(found := tasks(lab, service)) != count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service}: {count} tasks did not start")
        time.sleep(0.3)
    return found


def overlay_ip(lab: LabSpec, task_id: str) -> str:
    inspected = json.loads(docker(lab, "inspect", "--type", "task", task_id))[0]
    return str(inspected["NetworksAttachments"][0]["Addresses"][0]).split("/")[0]


def iperf(lab: LabSpec, target: str, streams: int, seconds: int, netns: dict[int, str]) -> float:
    server = subprocess.Popen(
        in_host(lab, 2, ["iperf3", "-s", "-1", "-p", "5201"], netns.get(2)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        argv = ["iperf3", "-c", target, "-p", "5201", "-t", str(seconds), "-P", str(streams), "-J"]
        out = subprocess.run(
            in_host(lab, 1, argv, netns.get(1)), capture_output=True, text=True, check=True
        ).stdout
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.wait(10)


def ping_rtt_us(lab: LabSpec, target: str, netns: str | None) -> float:
    argv = ["busybox", "ping", "-q", "-c", "200", "-i", "0.01", target]
    out = subprocess.run(in_host(lab, 1, argv, netns), capture_output=True, text=True).stdout
    match = re.search(r"= [\d.]+/([\d.]+)/", out)
    if match is None:
        raise RuntimeError(f"ping gave no round-trip time: {out}")
    return float(match.group(1)) * 1000


def vip_latency(lab: LabSpec, netns: dict[int, str], vip: str) -> float:
    """Scale web from 1 to 2 (one a node); time from the new task's running
    state to its first answer through the VIP from the other host."""
    before = {t["ID"] for t in wait_running(lab, "web", 1)}
    docker(lab, "service", "scale", "--detach", "web=2")
    new = next(t for t in wait_running(lab, "web", 2) if t["ID"] not in before)
    inspected = json.loads(docker(lab, "inspect", "--type", "task", new["ID"]))[0]
    started = datetime.fromisoformat(inspected["Status"]["Timestamp"].replace("Z", "+00:00"))
    other = next(h.index for h in lab.all_hosts() if h.hostname != new["Node"])
    wget = ["busybox", "wget", "-q", "-O", "-", f"http://{vip}/"]
    argv = in_host(lab, other, wget, netns[other])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = subprocess.run(argv, capture_output=True, text=True, timeout=5).stdout.strip()
        if answer == new["ID"][:12]:
            return (datetime.now(started.tzinfo) - started).total_seconds()
    raise TimeoutError("the new task never answered through the VIP")


def one_run(lab: LabSpec, netns: dict[int, str], remote: str, seconds: int) -> Figures:
    figures: Figures = {}
    underlay = str(lab.host(2).address)
    for streams in (1, 4):
        base = iperf(lab, underlay, streams, seconds, {})
        over = iperf(lab, remote, streams, seconds, netns)
        figures |= {
            f"overlay_gbps_{streams}": over,
            f"underlay_gbps_{streams}": base,
            f"ratio_{streams}": over / base,
        }
    figures["underlay_rtt_ms"] = ping_rtt_us(lab, underlay, None) / 1000
    figures["overlay_rtt_ms"] = ping_rtt_us(lab, remote, netns[1]) / 1000
    figures["added_rtt_us"] = (figures["overlay_rtt_ms"] - figures["underlay_rtt_ms"]) * 1000
    image = busybox_reference(lab)
    docker(
        lab, "service", "create", "--detach", "--name", "web", "--network", "perf",
        "--replicas", "1", "--replicas-max-per-node", "1", image, *WEB,
    )  # fmt: skip
    service = json.loads(docker(lab, "service", "inspect", "web"))[0]
    vip = service["Endpoint"]["VirtualIPs"][0]["Addr"].split("/")[0]
    figures["vip_ready_s"] = vip_latency(lab, netns, vip)
    docker(lab, "service", "rm", "web")
    print(
        "  ".join(f"{k} {v:.3f}" for k, v in figures.items()),
        flush=True,
    )
    return figures


def measure(runs: int, seconds: int = 5) -> list[Figures]:
    """The suite's entry: a fresh 2-host lab; iperf3 (1 and 4 streams), ping
    and VIP readiness, --runs times (targets: ratio >= 0.9, added rtt <= 100 us,
    VIP <= 1 s)."""
    name = f"bo{secrets.token_hex(2)}"
    lab = lab_up(name, 2, created_by="bench", managers=1)
    try:
        image = busybox_reference(lab)
        docker(lab, "network", "create", "-d", "overlay", "perf")
        docker(
            lab, "service", "create", "--detach", "--name", "pair", "--network", "perf",
            "--mode", "global", image, "sleep", "100000",
        )  # fmt: skip
        pair = {
            next(h.index for h in lab.all_hosts() if h.hostname == t["Node"]): t["ID"]
            for t in wait_running(lab, "pair", 2)
        }
        netns = {host: f"shoal-{name}-ct{task[:12]}" for host, task in pair.items()}
        remote = overlay_ip(lab, pair[2])
        return [one_run(lab, netns, remote, seconds) for _ in range(max(runs, 1))]
    finally:
        lab_down(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print_summary("overlay", measure(args.runs, args.seconds))


if __name__ == "__main__":
    main()
