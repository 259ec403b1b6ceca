"""Acknowledged writes per second on 3 managers with 16 concurrent clients.

    python -m bench.store [--clients 16] [--seconds 10]

Each client creates secrets through the API of one of the three managers
(round robin), one request at a time, for the given time; a write counts once
the manager answered 201. Prints writes/s and the latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp

from bench.managers_lab import api_url, lab_connector, managers_lab
from lab.spec import LabSpec


async def run(lab: LabSpec, clients: int, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    connector = lab_connector(lab, limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(n: int) -> None:
            url = f"{api_url(lab, 1 + n % 3)}/secrets/create"
            i = 0
            while time.monotonic() < deadline:
                started = time.monotonic()
                async with session.post(url, json={"Name": f"b{n}-{i}", "Data": "eA=="}) as r:
                    await r.read()
                    if r.status == 201:
                        latencies.append(time.monotonic() - started)
                i += 1

        await asyncio.gather(*(client(n) for n in range(clients)))
    return len(latencies), latencies


def measure(runs: int, clients: int = 16, seconds: float = 10.0) -> list[dict[str, float]]:
    """The suite's entry: a fresh lab of 3 managers; acknowledged writes per
    second from 16 clients, and their latency."""
    figures = []
    with managers_lab(3) as lab:
        for _ in range(max(runs, 1)):
            count, latencies = asyncio.run(run(lab, clients, seconds))
            latencies.sort()
            figures.append(
                {
                    "writes_per_s": count / seconds,
                    "p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
                    "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000
                    if latencies
                    else 0.0,
                }
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with managers_lab(3) as lab:
        count, latencies = asyncio.run(run(lab, args.clients, args.seconds))
    latencies.sort()
    print(
        f"acknowledged writes: {count} in {args.seconds:.0f}s = {count / args.seconds:.0f}/s "
        f"({args.clients} clients, 3 managers)"
    )
    if latencies:
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"latency p50 {p50 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
