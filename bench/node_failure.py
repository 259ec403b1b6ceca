"""A worker fails: 1 manager and 2 workers, a service of 6 replicas; the
agent of host 3 is killed (kill -9, held down, as a crashed node's would be).
Times, from the kill: until the manager marks the node down, and until 6
tasks run again on the other hosts.

    python -m bench.node_failure [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time

import aiohttp

from bench.managers_lab import api_url, lab_connector, request
from bench.suite import Figures, print_summary
from lab.lifecycle import lab_down, lab_up
from lab.seed import busybox_reference
from lab.services import stop_service
from lab.spec import LabSpec

DEADLINE = 180.0


async def running_away_from(session: aiohttp.ClientSession, api: str, node_id: str) -> int:
    filters = json.dumps({"service": ["nf"], "desired-state": ["running"]})
    _, tasks = await request(session, "GET", f"{api}/tasks?filters={filters}")
    return sum(1 for t in tasks if t["Status"]["State"] == "running" and t["NodeID"] != node_id)


async def one_failure(lab: LabSpec) -> Figures:
    api = api_url(lab, 1)
    async with aiohttp.ClientSession(connector=lab_connector(lab)) as session:
        spec = {
            "Name": "nf",
            "Mode": {"Replicated": {"Replicas": 6}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": busybox_reference(lab), "Command": ["sleep", "1d"]}
            },
        }
        await request(session, "POST", f"{api}/services/create", json=spec)
        _, nodes = await request(session, "GET", f"{api}/nodes")
        victim = next(
            n["ID"] for n in nodes if n["Description"]["Hostname"] == lab.host(3).hostname
        )
        deadline = time.monotonic() + DEADLINE
        while await running_away_from(session, api, "") < 6:
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not start")
            await asyncio.sleep(0.2)
        killed = time.monotonic()
        await asyncio.to_thread(stop_service, lab, f"{lab.host(3).name}/agent")
        down = 0.0
        while True:
            if not down:
                _, node = await request(session, "GET", f"{api}/nodes/{victim}")
                if node["Status"]["State"] == "down":
                    down = time.monotonic() - killed
            if await running_away_from(session, api, victim) >= 6:
                return {"down_s": down or float("nan"), "resched_s": time.monotonic() - killed}
            if time.monotonic() - killed > DEADLINE:
                raise TimeoutError("the tasks were not rescheduled")
            await asyncio.sleep(0.25)


def measure(runs: int) -> list[Figures]:
    """The suite's entry: a fresh 3-host lab (1 manager, 2 workers) each run."""
    figures = []
    for _ in range(max(runs, 1)):
        name = f"bn{secrets.token_hex(2)}"
        lab = lab_up(name, 3, created_by="bench", managers=1)
        try:
            figures.append(asyncio.run(one_failure(lab)))
            print(figures[-1], flush=True)
        finally:
            lab_down(name)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    print_summary("node-failure", measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()
