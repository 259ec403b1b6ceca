"""Leader failover on 3 managers: kill -9 the leader, time to a new leader, to
the first acknowledged write, and until a new 3-replica service runs.

    python -m bench.failover [--runs 3]

A writer keeps creating secrets through the two other managers every 20 ms;
the supervisor restarts the killed manager, as systemd would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time

import aiohttp

from bench.managers_lab import api_url, lab_connector, leader_host, managers_lab, request
from bench.suite import print_summary
from lab.configs import manager_address
from lab.seed import busybox_reference
from lab.services import service_pid
from lab.spec import LabSpec


async def service_converged(
    session: aiohttp.ClientSession, api: str, name: str, image: str
) -> None:
    """A new 3-replica service, created through a surviving manager, runs."""
    while True:
        try:
            status, _ = await request(
                session,
                "POST",
                f"{api}/services/create",
                json={
                    "Name": name,
                    "Mode": {"Replicated": {"Replicas": 3}},
                    "TaskTemplate": {"ContainerSpec": {"Image": image, "Command": ["sleep", "1d"]}},
                },
            )
            if status in (201, 409):
                break
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    while True:
        try:
            _, services = await request(session, "GET", f"{api}/services?status=1")
            mine = [s for s in services if s["Spec"]["Name"] == name]
            if mine and mine[0]["ServiceStatus"]["RunningTasks"] == 3:
                return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)


async def one_failover(lab: LabSpec, run: int) -> dict[str, float]:
    image = busybox_reference(lab)
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
        name = f"after{run}"
        await asyncio.wait_for(
            service_converged(session, api_url(lab, others[0]), name, image), 120
        )
        converged_at = time.monotonic()
        await request(session, "DELETE", f"{api_url(lab, others[0])}/services/{name}")
        await asyncio.sleep(3)  # let the killed manager come back before the next run
        return {
            "leader_s": new_leader_at - killed,
            "first_write_s": first_write_at - killed,
            "service_s": converged_at - killed,
        }


def measure(runs: int) -> list[dict[str, float]]:
    """The suite's entry: a fresh lab of 3 managers (each host also runs an agent)."""
    with managers_lab(3) as lab:
        return [asyncio.run(one_failover(lab, run)) for run in range(max(runs, 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print_summary("failover", measure(args.runs))


if __name__ == "__main__":
    main()
