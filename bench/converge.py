"""Convergence on 3 hosts (1 manager, 2 workers), image already present:
`service create` with 3, 30 and 90 replicas until every task runs, scale to
2x, a rolling update, and `service rm` until no container is left.

    python -m bench.converge [--sizes 3,30,90] [--runs 3]

Then a rolling update of every task (parallelism 10, no delay). Each size
runs --runs times on the same lab; medians with min and max are printed last.
`python -m bench --only converge --peer` measures Docker Swarm beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import partial

import aiohttp

from bench.suite import print_summary
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


Figures = dict[str, float]  # seconds, by step and size: create_3, scale_3, update_3, rm_3


async def up_to_date(session: aiohttp.ClientSession, api: str, name: str, wanted: int) -> bool:
    """Every wanted task runs from the service's current spec."""
    filters = json.dumps({"service": [name], "_up-to-date": ["true"], "desired-state": ["running"]})
    async with session.get(f"{api}/tasks", params={"filters": filters}) as reply:
        tasks = await reply.json()
    return sum(1 for t in tasks if t["Status"]["State"] == "running") == wanted


async def rolling_update(session: aiohttp.ClientSession, api: str, name: str) -> None:
    """Every task replaced, 10 at a time with no delay: the image's tasks
    redeployed (ForceUpdate; the peer updates to a same-content image tag)."""
    async with session.get(f"{api}/services/{name}") as reply:
        current = await reply.json()
    template = dict(current["Spec"]["TaskTemplate"])
    template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
    update = {"Parallelism": 10, "Delay": 0, "FailureAction": "pause", "Order": "stop-first"}
    new_spec = dict(current["Spec"], TaskTemplate=template, UpdateConfig=update)
    version = current["Version"]["Index"]
    async with session.post(f"{api}/services/{name}/update?version={version}", json=new_spec) as r:
        await r.read()


async def scenario(lab: LabSpec, sizes: list[int], runs: int) -> list[Figures]:
    results: list[Figures] = [{} for _ in range(runs)]
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
            started = time.monotonic()
            await rolling_update(session, api, name)
            await until(partial(up_to_date, session, api, name, 2 * size))
            updated = time.monotonic() - started
            await session.delete(f"{api}/services/{name}")
            removed = await until(partial(no_containers, lab))
            results[run].update(
                {
                    f"create_{size}": created,
                    f"scale_{size}": scaled,
                    f"update_{size}": updated,
                    f"rm_{size}": removed,
                }
            )
            print(
                f"run {run + 1} replicas {size:3}: create {created:6.2f}s   "
                f"scale to {2 * size:3} {scaled:6.2f}s   update {updated:6.2f}s   "
                f"rm {removed:6.2f}s",
                flush=True,
            )
    return results


def measure(runs: int, sizes: tuple[int, ...] = (3, 30, 90)) -> list[Figures]:
    """The suite's entry: a fresh 3-host lab (1 manager, 2 workers)."""
    name = f"bc{secrets.token_hex(2)}"
    lab = lab_up(name, 3, created_by="bench", managers=1)
    try:
        return asyncio.run(scenario(lab, list(sizes), max(runs, 1)))
    finally:
        lab_down(name)


async def running_is(session: aiohttp.ClientSession, api: str, name: str, wanted: int) -> bool:
    return await running(session, api, name) == wanted


async def no_containers(lab: LabSpec) -> bool:
    return await containers(lab) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,30,90")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print_summary("converge", measure(args.runs, sizes))


if __name__ == "__main__":
    main()
