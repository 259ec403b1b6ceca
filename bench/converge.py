"""Convergence on 3 hosts (1 manager, 2 workers), image already present:
`service create` with 3, 30 and 90 replicas until every task runs, scale to
2x, and `service rm` until no container is left.

    python -m bench.converge [--sizes 3,30,90] [--runs 3]

Each size runs --runs times on the same lab; the medians are printed last,
beside Swarm's, with the ratio (target: at most 1.0x, aim 0.5x).

Docker Swarm on this machine took (medians): 1.0 s (3), 5.5 s (30), 16 s (90);
scale 90 -> 180: 16.9 s; rm of 90: 15.3 s (../shared/peer/results).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial

import aiohttp

from lab.configs import manager_address, runtime_config
from lab.lifecycle import lab_down, lab_up
from lab.managers import lab_tls
from lab.seed import busybox_reference
from lab.spec import LabSpec
from runtime.driver import ContainerdRuntime


async def running(session: aiohttp.ClientSession, api: str, name: str) -> int:
    async with session.get(f"{api}/services", params={"status": "1"}) as reply:
        for service in await reply.json():
            if service["Spec"]["Name"] == name:
                return int(service["ServiceStatus"]["RunningTasks"])
    return 0


async def containers(lab: LabSpec) -> int:
    total = 0
    for host in lab.all_hosts():
        async with ContainerdRuntime(runtime_config(lab, host)) as runtime:
            total += len(await runtime.list_containers())
    return total


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 600) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError("no convergence")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def spec(lab: LabSpec, name: str, replicas: int) -> dict[str, object]:
    return {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": busybox_reference(lab),
                "Command": ["sleep", "100000"],
                "StopGracePeriod": 1_000_000_000,
            }
        },
    }


Figures = tuple[float, float, float]  # create, scale to 2x, rm (seconds)
SWARM: dict[int, Figures] = {3: (1.0, 0.0, 0.0), 30: (5.5, 0.0, 0.0), 90: (16.0, 16.9, 15.3)}


async def scenario(lab: LabSpec, sizes: list[int], runs: int) -> dict[int, list[Figures]]:
    results: dict[int, list[Figures]] = {size: [] for size in sizes}
    api = f"https://{manager_address(lab.host(1))}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=lab_tls(lab))) as session:
        # Warm up: the image on every host (the peer's scenario imports it first).
        await session.post(f"{api}/services/create", json=spec(lab, "warm", 3))
        await until(partial(running_is, session, api, "warm", 3))
        await session.delete(f"{api}/services/warm")
        await until(partial(no_containers, lab))
        for run, size in ((r, s) for r in range(runs) for s in sizes):
            name = f"c{size}r{run}"
            async with session.post(f"{api}/services/create", json=spec(lab, name, size)) as r:
                await r.read()
            created = await until(partial(running_is, session, api, name, size))
            async with session.get(f"{api}/services/{name}") as r:
                current = await r.json()
            scaled_spec = dict(current["Spec"], Mode={"Replicated": {"Replicas": 2 * size}})
            version = current["Version"]["Index"]
            await session.post(f"{api}/services/{name}/update?version={version}", json=scaled_spec)
            scaled = await until(partial(running_is, session, api, name, 2 * size))
            await session.delete(f"{api}/services/{name}")
            removed = await until(partial(no_containers, lab))
            results[size].append((created, scaled, removed))
            print(
                f"run {run + 1} replicas {size:3}: create {created:6.2f}s   "
                f"scale to {2 * size:3} {scaled:6.2f}s   rm {removed:6.2f}s",
                flush=True,
            )
    return results


def print_medians(results: dict[int, list[Figures]]) -> None:
    print("\nmedians (Swarm on this machine; ratio)")
    for size, figures in results.items():
        medians = [statistics.median(f[i] for f in figures) for i in range(3)]
        cells = []
        for what, ours, theirs in zip(
            ("create", "scale", "rm"), medians, SWARM.get(size, (0, 0, 0)), strict=True
        ):
            ref = f" (Swarm {theirs:.1f}s; {ours / theirs:.2f}x)" if theirs else ""
            cells.append(f"{what} {ours:6.2f}s{ref}")
        print(f"replicas {size:3}: " + "   ".join(cells))


async def running_is(session: aiohttp.ClientSession, api: str, name: str, wanted: int) -> bool:
    return await running(session, api, name) == wanted


async def no_containers(lab: LabSpec) -> bool:
    return await containers(lab) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,30,90")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    name = "bconv"
    lab = lab_up(name, 3, created_by="bench", managers=1)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        print_medians(asyncio.run(scenario(lab, sizes, max(args.runs, 1))))
    finally:
        lab_down(name)


if __name__ == "__main__":
    main()
