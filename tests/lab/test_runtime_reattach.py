"""The process using the driver restarts: containers keep running, are found
again by label, and their exit is still observed; logs keep flowing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from lab.configs import runtime_config
from lab.seed import busybox_reference
from lab.spec import LabSpec
from lab.system import process_alive
from runtime.driver import ContainerdRuntime

pytestmark = pytest.mark.lab

STARTER = textwrap.dedent("""
    import asyncio, json, sys
    from api.container_spec import ContainerSpec
    from lab.configs import runtime_config
    from lab.lifecycle import spec_of
    from runtime.driver import ContainerdRuntime
    from runtime.protocol import ContainerConfig

    async def main():
        lab = spec_of(sys.argv[1])
        async with ContainerdRuntime(runtime_config(lab, lab.host(1))) as rt:
            await rt.pull(sys.argv[2])
            spec = ContainerSpec(image=sys.argv[2], command=["sh", "-c",
                "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done"])
            await rt.create(ContainerConfig("reattach-me", spec))
            print(json.dumps({"pid": await rt.start("reattach-me")}))
    asyncio.run(main())
""")


async def test_reattach_after_the_caller_restarts(lab2: LabSpec) -> None:
    started = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", STARTER, lab2.name, busybox_reference(lab2)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]  # the process that made it has exited

    async with ContainerdRuntime(runtime_config(lab2, lab2.host(1))) as rt:
        try:
            found = {c.id: c for c in await rt.list_containers()}
            assert found["reattach-me"].state == "running"
            assert found["reattach-me"].pid == pid and process_alive(pid)
            before = [e async for e in rt.logs("reattach-me")]
            await asyncio.sleep(1.0)
            after = [e async for e in rt.logs("reattach-me")]
            assert len(after) > len(before) > 0  # the shim's logger kept writing

            waiter = asyncio.create_task(rt.wait("reattach-me"))
            await asyncio.sleep(0.2)
            assert not waiter.done()
            await rt.kill("reattach-me", "SIGKILL")
            status = await asyncio.wait_for(waiter, 30)
            assert status.exit_code == 137 and not status.oom_killed
        finally:
            await rt.delete("reattach-me", remove_logs=True)
