"""The containerd driver on a real lab host: images, containers, logs, errors."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from api.container_spec import ContainerSpec, Limits, Mount
from lab.configs import runtime_config
from lab.seed import busybox_reference
from lab.spec import LabSpec
from runtime.containerd_client import ContainerdUnavailable
from runtime.driver import ContainerdRuntime
from runtime.protocol import ContainerConfig, ContainerNotFound
from runtime.registry import DigestMismatch, ImageNotFound, RegistryUnreachable
from runtime.unpack import ImageError
from tests.images import push_image, tiny_image
from tests.lab.helpers import in_host

pytestmark = pytest.mark.lab


@pytest.fixture
async def rt(lab2: LabSpec) -> AsyncIterator[ContainerdRuntime]:
    async with ContainerdRuntime(runtime_config(lab2, lab2.host(1))) as runtime:
        yield runtime
        for container in await runtime.list_containers():
            await runtime.delete(container.id, remove_logs=True)


def new_id() -> str:
    return f"c{secrets.token_hex(8)}"


def sh(image: str, script: str, **kw: object) -> ContainerSpec:
    return ContainerSpec(image=image, command=["sh", "-c", script], **kw)  # type: ignore[arg-type]


async def run_to_exit(rt: ContainerdRuntime, spec: ContainerSpec, **kw: object) -> tuple[str, int]:
    cid = new_id()
    await rt.create(ContainerConfig(cid, spec, **kw))  # type: ignore[arg-type]
    await rt.start(cid)
    status = await asyncio.wait_for(rt.wait(cid), 60)
    return cid, status.exit_code


async def test_pull_run_read_output_and_exit_code(rt: ContainerdRuntime, lab2: LabSpec) -> None:
    image = busybox_reference(lab2)
    pulled = await rt.pull(image)
    assert pulled.name == image and pulled.digest.startswith("sha256:")
    spec = sh(
        image,
        'echo "out $(id -u):$(id -g) $PATH $GREETING"; echo err >&2; pwd; exit 3',
        user="app",
        env=["GREETING=hi"],
        dir="/tmp",
        hostname="web-1",
    )
    cid, code = await run_to_exit(rt, spec)
    assert code == 3
    lines = [(e.stream, e.line) async for e in rt.logs(cid)]
    assert (
        "stdout",
        "out 1000:1000 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin hi\n",
    ) in lines
    assert ("stderr", "err\n") in lines
    assert ("stdout", "/tmp\n") in lines


async def test_image_entrypoint_and_cmd_defaults_apply(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    # The image's Cmd is ["sh"]: Args alone replace it.
    _, code = await run_to_exit(rt, ContainerSpec(image=image, args=["sh", "-c", "exit 7"]))
    assert code == 7


async def test_memory_hog_is_oom_killed_and_reported(rt: ContainerdRuntime, lab2: LabSpec) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    spec = sh(image, "exec dd if=/dev/zero of=/dev/null bs=64M count=1")
    cid = new_id()
    await rt.create(ContainerConfig(cid, spec, limits=Limits(memory_bytes=16 * 1024 * 1024)))
    await rt.start(cid)
    status = await asyncio.wait_for(rt.wait(cid), 60)
    assert status.oom_killed and status.exit_code == 137
    # ...and a well-behaved container under the same limit is not.
    _, code = await run_to_exit(rt, sh(image, "exit 0"), limits=Limits(memory_bytes=16 << 20))
    assert code == 0


async def test_stop_honours_sigterm_then_falls_back_to_sigkill(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    polite, stubborn = new_id(), new_id()
    await rt.create(
        ContainerConfig(polite, sh(image, "trap 'exit 0' TERM; while :; do sleep 0.1; done"))
    )
    await rt.create(
        ContainerConfig(stubborn, sh(image, "trap '' TERM; while :; do sleep 0.1; done"))
    )
    for cid in (polite, stubborn):
        await rt.start(cid)
    await asyncio.sleep(0.5)  # let the shells install their traps
    polite_status = await rt.stop(polite, grace=30)
    assert polite_status.exit_code == 0  # it exited on SIGTERM, well before the grace ran out
    started = time.monotonic()
    stubborn_status = await rt.stop(stubborn, grace=1.5)
    assert stubborn_status.exit_code == 137  # SIGKILL
    assert time.monotonic() - started >= 1.5  # ...but only after the whole grace period


async def test_delete_leaves_no_container_task_snapshot_mount_fifo_or_cgroup(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    cid = new_id()
    await rt.create(ContainerConfig(cid, sh(image, "while :; do sleep 1; done")))
    await rt.start(cid)
    result = await rt.exec(cid, ["sh", "-c", "echo probing; exit 4"])
    assert (result.exit_code, result.stdout) == (4, b"probing\n")
    host = lab2.host(1)
    assert cid in in_host(lab2, "h1", "cat", "/proc/self/mountinfo")
    await rt.delete(cid, remove_logs=True)

    assert cid not in [c.id for c in await rt.list_containers()]
    with pytest.raises(ContainerNotFound):
        await rt.wait(cid)
    snapshots = in_host(
        lab2,
        "h1",
        "ctr",
        "--address",
        str(host.containerd_socket),
        "-n",
        "shoal",
        "snapshots",
        "ls",
    )
    assert cid not in snapshots
    assert cid not in in_host(lab2, "h1", "cat", "/proc/self/mountinfo")
    assert not rt.container_dir(cid).exists()  # hosts files and exec FIFOs
    assert not list(rt.log_path(cid).parent.glob(f"{cid}*"))
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{rt.config.cgroup_parent}/{cid}"))


async def test_missing_image_or_tag_and_bad_registry_name_the_image(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    registry = lab2.registry_address
    with pytest.raises(ImageNotFound, match=f"{registry}/library/nothing:latest"):
        await rt.pull(f"{registry}/library/nothing")
    with pytest.raises(ImageNotFound, match=f"{registry}/library/busybox:nope"):
        await rt.pull(f"{registry}/library/busybox:nope")
    closed_port = f"{lab2.host(2).address}:5999"  # a lab host, nothing listening
    with pytest.raises(RegistryUnreachable, match=f"{closed_port}/library/busybox:latest"):
        await rt.pull(f"{closed_port}/library/busybox")
    with pytest.raises(ImageError, match="not found on this host"):
        await rt.create(ContainerConfig(new_id(), ContainerSpec(image=f"{registry}/never:pulled")))


async def test_a_blob_whose_digest_does_not_match_is_refused(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    image = f"{lab2.registry_address}/test/corrupt:{secrets.token_hex(3)}"
    tiny = tiny_image({"hello.txt": secrets.token_bytes(4096)})
    await push_image(lab2.registry_address, image, tiny)
    layer = json.loads(tiny.manifest)["layers"][0]["digest"].split(":")[1]
    blobs = lab2.host(1).directory / "registry/docker/registry/v2/blobs/sha256"
    data = blobs / layer[:2] / layer / "data"
    data.write_bytes(data.read_bytes()[:-10] + b"corrupted!")
    with pytest.raises(DigestMismatch, match=image):
        await rt.pull(image)
    assert image not in [i.name for i in await rt.list_images()]


async def output_of(rt: ContainerdRuntime, spec: ContainerSpec, **kw: object) -> list[str]:
    cid, code = await run_to_exit(rt, spec, **kw)
    lines = [e.line async for e in rt.logs(cid)]
    assert code == 0, lines
    return lines


async def test_mounts_read_only_root_hosts_init_caps_and_sysctls(
    rt: ContainerdRuntime, lab2: LabSpec, tmp_path: Path
) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    (tmp_path / "shared.txt").write_text("from the host\n")
    script = (
        "cat /host/shared.txt; echo scratch > /scratch/f && cat /scratch/f; "
        "touch /rootfile 2>/dev/null && echo root-writable || echo root-read-only; "
        "grep db.internal /etc/hosts; cat /proc/sys/net/ipv4/ip_forward; "
        "tr '\\0' ' ' < /proc/1/cmdline; echo; grep CapBnd /proc/self/status"
    )
    spec = sh(image, script, read_only=True, init=True, hosts=["10.9.8.7 db.internal"],
              sysctls={"net.ipv4.ip_forward": "1"}, capability_drop=["NET_RAW"],
              capability_add=["NET_ADMIN"],
              mounts=[Mount(target="/host", type="bind", source=str(tmp_path), read_only=True),
                      Mount(target="/scratch", type="tmpfs")])  # fmt: skip
    lines = await output_of(rt, spec)
    assert lines[:4] == ["from the host\n", "scratch\n", "root-read-only\n",
                         "10.9.8.7\tdb.internal\n"]  # fmt: skip
    assert lines[4] == "1\n"  # the sysctl, in the container's own network namespace
    assert lines[5].startswith("/sbin/docker-init -- sh -c")  # tini is PID 1
    bounding = int(lines[6].split()[1], 16)
    assert not bounding & (1 << 13)  # CAP_NET_RAW dropped
    assert bounding & (1 << 12)  # CAP_NET_ADMIN added
    assert bounding & (1 << 0)  # CAP_CHOWN kept from Docker's default set


async def test_limits_reach_the_cgroup_and_stats_read_it(
    rt: ContainerdRuntime, lab2: LabSpec
) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    cid = new_id()
    limits = Limits(nano_cpus=500_000_000, memory_bytes=48 << 20, pids=20)
    await rt.create(ContainerConfig(cid, sh(image, "while :; do sleep 0.2; done"), limits=limits))
    await rt.start(cid)
    stats = await rt.stats(cid)
    assert stats.memory_limit_bytes == 48 << 20
    assert stats.pids >= 1 and stats.memory_usage_bytes > 0
    cgroup = rt.cgroups_path(cid).lstrip("/")
    assert Path(f"/sys/fs/cgroup/cpu/{cgroup}/cpu.cfs_quota_us").read_text().strip() == "50000"
    assert Path(f"/sys/fs/cgroup/pids/{cgroup}/pids.max").read_text().strip() == "20"
    await rt.stop(cid, grace=1)


async def test_logs_follow_new_lines(rt: ContainerdRuntime, lab2: LabSpec) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    cid = new_id()
    script = "i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo line $i; sleep 0.1; done"
    await rt.create(ContainerConfig(cid, sh(image, script)))
    await rt.start(cid)
    seen: list[str] = []
    async with asyncio.timeout(30):
        async for entry in rt.logs(cid, follow=True):
            seen.append(entry.line)
            if len(seen) == 5:
                break
    assert seen == [f"line {i}\n" for i in range(1, 6)]


async def test_a_stopped_containerd_or_wrong_socket_is_a_clear_error(lab2: LabSpec) -> None:
    config = runtime_config(lab2, lab2.host(1))
    wrong = replace(config, socket=config.socket.with_name("nothing.sock"))
    async with ContainerdRuntime(wrong) as runtime:
        with pytest.raises(ContainerdUnavailable, match=r"nothing\.sock"):
            await runtime.list_containers()


@pytest.fixture
def named_netns() -> Iterator[str]:
    """A network namespace made by the caller (as netd will), with a probe link."""
    netns = f"trt-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "probe0", "type", "veth",
                        "peer", "name", "probe1"], check=True)  # fmt: skip
        yield netns
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


async def test_a_given_network_namespace_and_the_specs_stop_signal_and_grace(
    rt: ContainerdRuntime, lab2: LabSpec, named_netns: str
) -> None:
    image = busybox_reference(lab2)
    await rt.pull(image)
    cid = new_id()
    spec = sh(image, "cat /proc/net/dev; trap 'exit 5' USR1; while :; do sleep 0.1; done",
              stop_signal="SIGUSR1", stop_grace_period=30_000_000_000)  # fmt: skip
    await rt.create(ContainerConfig(cid, spec, netns_path=f"/run/netns/{named_netns}"))
    await rt.start(cid)
    await asyncio.sleep(0.5)
    status = await rt.stop(cid)  # the spec's signal and grace, not SIGTERM then SIGKILL
    assert status.exit_code == 5
    assert any(["probe0" in e.line async for e in rt.logs(cid)])
