"""Leader failover on 3 managers: kill -9 the leader, time to a new leader and
to the first acknowledged write.

    python -m bench.failover [--runs 3]

A writer keeps creating secrets through the two other managers every 20 ms;
the supervisor restarts the killed manager, as systemd would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time

import aiohttp

from bench.managers_lab import api_url, lab_connector, leader_host, managers_lab, request
from lab.configs import manager_address
from lab.services import service_pid
from lab.spec import LabSpec


async def one_failover(lab: LabSpec, run: int) -> tuple[float, float]:
    timeout = aiohttp.ClientTimeout(total=3)
    async with aiohttp.ClientSession(timeout=timeout, connector=lab_connector(lab)) as session:
        leader = await leader_host(session, lab)
        others = [h for h in (1, 2, 3) if h != leader]
        pid = service_pid(lab, f"h{leader}/manager")
        assert pid is not None
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        new_leader_at = first_write_at = 0.0
        i = 0
        while not (new_leader_at and first_write_at):
            host = others[i % 2]
            i += 1
            try:
                if not new_leader_at:
                    _, nodes = await request(session, "GET", f"{api_url(lab, host)}/nodes")
                    killed_addr = manager_address(lab.host(leader))
                    if any(
                        (n.get("ManagerStatus") or {}).get("Leader")
                        and n["ManagerStatus"].get("Addr") != killed_addr
                        for n in nodes
                    ):
                        new_leader_at = time.monotonic()
                if not first_write_at:
                    status, _ = await request(
                        session,
                        "POST",
                        f"{api_url(lab, host)}/secrets/create",
                        json={"Name": f"f{run}-{i}", "Data": "eA=="},
                    )
                    if status == 201:
                        first_write_at = time.monotonic()
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.02)
            if time.monotonic() - killed > 60:
                raise RuntimeError("no failover within 60 s")
        await asyncio.sleep(3)  # let the killed manager come back before the next run
        return new_leader_at - killed, first_write_at - killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    leaders, writes = [], []
    with managers_lab(3) as lab:
        for run in range(args.runs):
            to_leader, to_write = asyncio.run(one_failover(lab, run))
            leaders.append(to_leader)
            writes.append(to_write)
            print(f"run {run + 1}: new leader {to_leader:.2f}s, first write {to_write:.2f}s")
    print(
        f"kill -9 leader -> new leader: median {statistics.median(leaders):.2f}s "
        f"(min {min(leaders):.2f}, max {max(leaders):.2f})"
    )
    print(
        f"kill -9 leader -> first acknowledged write: median {statistics.median(writes):.2f}s "
        f"(min {min(writes):.2f}, max {max(writes):.2f})"
    )


if __name__ == "__main__":
    main()
