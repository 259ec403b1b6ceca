"""Container start: Shoal's runtime against `ctr run` on the same lab host.

    python -m bench.start [--runs 20] [--lab NAME]

Brings up a one-host lab (unless --lab names an existing one), pulls the
lab's busybox, then times, median of --runs:
  - shoal create->running: ContainerdRuntime.create + start, until start
    returns (the container's process is running);
  - shoal full cycle: create, start, wait for `true` to exit, delete;
  - ctr run --rm: the same `true` through containerd's own CLI, inside the
    host's namespaces, from exec to exit (its cycle includes the removal).
Prints the figures and the ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import time

from api.container_spec import ContainerSpec
from lab.configs import enter_host, runtime_config
from lab.lifecycle import lab_down, lab_up, spec_of
from lab.seed import busybox_reference
from lab.spec import LabSpec
from runtime.driver import ContainerdRuntime
from runtime.protocol import ContainerConfig


def ctr_run_seconds(lab: LabSpec, image: str) -> float:
    host = lab.host(1)
    argv = [
        *enter_host(host),
        "ctr",
        "--address",
        str(host.containerd_socket),
        "-n",
        "shoal",
        "run",
        "--rm",
        image,
        f"bench-ctr-{secrets.token_hex(4)}",
        "true",
    ]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - started


async def shoal_seconds(rt: ContainerdRuntime, image: str) -> tuple[float, float]:
    cid = f"bench-{secrets.token_hex(6)}"
    started = time.perf_counter()
    await rt.create(ContainerConfig(cid, ContainerSpec(image=image, command=["true"])))
    await rt.start(cid)
    running = time.perf_counter() - started
    await rt.wait(cid)
    await rt.delete(cid, remove_logs=True)
    return running, time.perf_counter() - started


async def timings(lab: LabSpec, runs: int) -> dict[str, list[float]]:
    image = busybox_reference(lab)
    results: dict[str, list[float]] = {"create->running": [], "full cycle": [], "ctr run --rm": []}
    async with ContainerdRuntime(runtime_config(lab, lab.host(1))) as rt:
        await rt.pull(image)
        await shoal_seconds(rt, image)  # warm caches on both paths once
        ctr_run_seconds(lab, image)
        for _ in range(runs):
            running, cycle = await shoal_seconds(rt, image)
            results["create->running"].append(running)
            results["full cycle"].append(cycle)
            results["ctr run --rm"].append(ctr_run_seconds(lab, image))
    return results


def measure(runs: int) -> list[dict[str, float]]:
    """The suite's entry: a fresh one-host lab; per run, create->running, the
    full cycle (as `docker run --rm` is) and `ctr run --rm`, in seconds."""
    name = f"bs{secrets.token_hex(2)}"
    lab = lab_up(name, 1, created_by="bench")
    try:
        found = asyncio.run(timings(lab, max(runs, 1)))
    finally:
        lab_down(name)
    names = {"create->running": "running_s", "full cycle": "full_cycle_s", "ctr run --rm": "ctr_s"}
    return [
        {names[k]: values[i] for k, values in found.items()}
        for i in range(len(found["ctr run --rm"]))
    ]


def report(results: dict[str, list[float]]) -> None:
    medians = {k: statistics.median(v) for k, v in results.items()}
    for name, values in results.items():
        print(
            f"{name:18} median {medians[name]:.3f}s  min {min(values):.3f}s  "
            f"max {max(values):.3f}s  n={len(values)}"
        )
    ctr = medians["ctr run --rm"]
    print(f"ratio create->running / ctr run --rm: {medians['create->running'] / ctr:.2f}")
    print(f"ratio full cycle / ctr run --rm:      {medians['full cycle'] / ctr:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lab", default=None, help="use this existing lab")
    args = parser.parse_args()
    name = args.lab or f"bs{secrets.token_hex(2)}"
    lab = spec_of(name) if args.lab else lab_up(name, 1, created_by="bench")
    try:
        report(asyncio.run(timings(lab, args.runs)))
    finally:
        if not args.lab:
            lab_down(name)


if __name__ == "__main__":
    main()
