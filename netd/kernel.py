"""The kernel side of netd: links, addresses, FDB and neighbour entries,
network namespaces and nftables, through iproute2 and nft (their JSON
output where netd reads state back). Every step is idempotent, so a netd
that restarts, or a step that is repeated, converges instead of failing."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from netd.model import Attachment, Link, Network
from netd.plan import (
    GATEWAY_BRIDGE,
    VXLAN_PORT,
    Peer,
    bridge_name,
    gateway_bridge_mac,
    vxlan_name,
)

log = logging.getLogger("shoal.netd.kernel")
MTU = 1450  # 1500 minus VXLAN's 50 bytes


class KernelError(RuntimeError):
    """A command that had to succeed did not; the message has its stderr."""


async def run(*argv: str, stdin: str | None = None, check: bool = True) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if check and process.returncode != 0:
        raise KernelError(f"{' '.join(argv)}: {err.decode().strip()}")
    return out.decode()


async def links() -> dict[str, dict[str, Any]]:
    listed = json.loads(await run("ip", "-j", "-d", "link", "show") or "[]")
    return {str(link["ifname"]): link for link in listed}


async def ensure_gateway_bridge(address: str) -> None:
    """The node's bridge for containers' egress and DNS; its ports are
    isolated from each other (containers meet only on their overlays). Its
    MAC is set, so that ports coming and going never change it."""
    present = await links()
    if GATEWAY_BRIDGE not in present:
        await run("ip", "link", "add", GATEWAY_BRIDGE, "type", "bridge")
    await run("ip", "link", "set", GATEWAY_BRIDGE, "address", gateway_bridge_mac(address))
    await run("ip", "addr", "replace", address, "dev", GATEWAY_BRIDGE)
    await run("ip", "link", "set", GATEWAY_BRIDGE, "up")
    await run("sysctl", "-qw", "net.ipv4.ip_forward=1")


async def ensure_network(
    network: Network, local_addr: str, address: tuple[str, str] | None
) -> None:
    bridge, vxlan = bridge_name(network.id), vxlan_name(network.id)
    present = await links()
    if bridge not in present:
        await run("ip", "link", "add", bridge, "type", "bridge")
    if address is not None:
        await run("ip", "link", "set", bridge, "address", address[1])
        await run("ip", "addr", "replace", address[0], "dev", bridge)
    if vxlan not in present:
        # No learning and no flooding: static entries only, and the device
        # answers ARP for remote endpoints from its neighbour table (proxy).
        vxlan_options = ["id", str(network.vni), "local", local_addr, "dstport", str(VXLAN_PORT)]
        await run(
            "ip", "link", "add", vxlan, "type", "vxlan", *vxlan_options,
            "nolearning", "proxy", "noudpcsum",
        )  # fmt: skip
    await run("ip", "link", "set", vxlan, "master", bridge, "mtu", str(MTU), "up")
    await run("ip", "link", "set", bridge, "up")


async def remove_network(network_id: str) -> None:
    for name in (vxlan_name(network_id), bridge_name(network_id)):
        await run("ip", "link", "del", name, check=False)


async def present_networks() -> set[str]:
    """Network ID prefixes of the bridges netd made (what a restart finds)."""
    return {name[4:] for name in await links() if name.startswith("sbr-")}


async def sync_peers(network_id: str, peers: frozenset[Peer]) -> int:
    """Make the VXLAN device's static entries exactly the peers; returns how
    many changed."""
    device = vxlan_name(network_id)
    fdb = json.loads(await run("bridge", "-j", "fdb", "show", "dev", device) or "[]")
    have_fdb = {
        (str(e["mac"]), str(e.get("dst") or ""))
        for e in fdb
        if e.get("dst") and e.get("mac") != "00:00:00:00:00:00"
    }
    neigh = json.loads(await run("ip", "-j", "neigh", "show", "dev", device) or "[]")
    have_neigh = {(str(e["dst"]), str(e.get("lladdr") or "")) for e in neigh}
    want_fdb = {(p.mac, p.remote) for p in peers}
    want_neigh = {(p.ip, p.mac) for p in peers}
    changes = 0
    for mac, remote in have_fdb - want_fdb:
        await run("bridge", "fdb", "del", mac, "dev", device, "dst", remote, "self", check=False)
        changes += 1
    for ip, _ in have_neigh - want_neigh:
        await run("ip", "neigh", "del", ip, "dev", device, check=False)
        changes += 1
    for mac, remote in want_fdb - have_fdb:
        await run(
            "bridge", "fdb", "replace", mac, "dev", device, "dst", remote, "self", "permanent"
        )
        changes += 1
    for ip, mac in want_neigh - have_neigh:
        await run("ip", "neigh", "replace", ip, "lladdr", mac, "dev", device, "nud", "permanent")
        changes += 1
    return changes


async def apply_rules(ruleset: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    await run(*prefix, "nft", "-f", "-", stdin=ruleset)


async def attach(attachment: Attachment, gateway: str, prefixlen: int) -> None:
    """A namespace for the container, a veth into each overlay's bridge and
    one into the gateway bridge (default route, egress, DNS). Three batches
    of iproute2 commands: a container start pays for a handful of processes,
    not dozens."""
    ns = attachment.netns
    gateway_link = Link("", attachment.gateway_veth, f"{attachment.gateway_ip}/{prefixlen}", "")
    links = [*attachment.links, gateway_link]
    if (await _run_status("ip", "netns", "add", ns)) != 0:
        await _forget(attachment)  # the leftovers of an attach cut short: start over
        await run("ip", "netns", "add", ns)
    host_create, inside, host_join = [], ["link set lo up"], []
    for index, link in enumerate(links):
        temporary, name = "t" + link.host_veth[1:], f"eth{index}"
        bridge = bridge_name(link.network_id) if link.network_id else GATEWAY_BRIDGE
        mtu = MTU if link.network_id else 1500
        host_create.append(f"link add {link.host_veth} type veth peer name {temporary} netns {ns}")
        inside.append(f"link set {temporary} name {name}")
        if link.mac:
            inside.append(f"link set {name} address {link.mac}")
        inside.append(f"link set {name} mtu {mtu} up")
        inside.append(f"addr add {link.address} dev {name}")
        host_join.append(f"link set {link.host_veth} master {bridge} mtu {mtu} up")
    inside.append(f"route add default via {gateway} dev eth{len(links) - 1}")
    await run("ip", "-batch", "-", stdin="\n".join(host_create) + "\n")
    await run("ip", "-n", ns, "-batch", "-", stdin="\n".join(inside) + "\n")
    await run("ip", "-batch", "-", stdin="\n".join(host_join) + "\n")
    await run("bridge", "link", "set", "dev", attachment.gateway_veth, "isolated", "on")


async def _run_status(*argv: str) -> int:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


async def _forget(attachment: Attachment) -> None:
    await run("ip", "netns", "del", attachment.netns, check=False)
    for name in [link.host_veth for link in attachment.links] + [attachment.gateway_veth]:
        await run("ip", "link", "del", name, check=False)


async def detach(attachment: Attachment) -> None:
    """Deleting the namespace takes the container's veth ends, and so their
    peers on the bridges (the container is gone by now)."""
    await run("ip", "netns", "del", attachment.netns, check=False)


async def link_counters(name: str) -> tuple[int, int, int, int]:
    """rx bytes, tx bytes, rx packets, tx packets of a link (0s if it is gone)."""
    try:
        listed = json.loads(await run("ip", "-j", "-s", "link", "show", name))
    except KernelError:
        return 0, 0, 0, 0
    stats = listed[0].get("stats64") or {}
    rx, tx = stats.get("rx") or {}, stats.get("tx") or {}
    return (
        int(rx.get("bytes", 0)),
        int(tx.get("bytes", 0)),
        int(rx.get("packets", 0)),
        int(tx.get("packets", 0)),
    )
