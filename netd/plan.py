"""What the kernel of this node should hold, from the cluster's network state
and the containers attached here. Pure: the applier compares it with what
the kernel has and changes only the difference (so a restarted netd never
cuts a running container off).

- a bridge and a VXLAN device for every network with a container here, and
  for the ingress network on every node (the routing mesh needs it);
- on each VXLAN device, a static FDB and neighbour entry per remote endpoint
  (no multicast, no learning, no flooding: the device answers ARP itself);
- in each container's namespace, nftables DNAT from every service VIP it can
  see to that service's running tasks (`numgen` maps; no IPVS here);
- on the node, DNAT from published ports to the tasks (ingress: anywhere, via
  the ingress network; host mode: only this node's tasks), egress NAT for the
  gateway bridge, and no forwarding from containers into other overlays;
- no connection tracking for the VXLAN packets themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.addresses import mac_for
from netd.model import Attachment, Endpoint, Network, Service, Snapshot

GATEWAY_BRIDGE = "shoal_gwbridge"
BRIDGE_PREFIX = "sbr-"
VXLAN_PREFIX = "svx-"
VXLAN_PORT = 4789
LB_TABLE = "shoal_lb"
HOST_TABLE = "shoal"


def gateway_bridge_mac(gateway: str) -> str:
    """The gateway bridge's MAC, fixed and derived from its address. Left to
    itself a bridge takes the lowest MAC among its ports, so attaching or
    detaching any container could change it; the node's other containers
    would then keep sending DNS queries and egress to the old MAC (dropped)
    until their ARP entry for the gateway failed, 5 to 8 s later."""
    return mac_for(gateway)


def bridge_name(network_id: str) -> str:
    return BRIDGE_PREFIX + network_id[:10]


def vxlan_name(network_id: str) -> str:
    return VXLAN_PREFIX + network_id[:10]


@dataclass(frozen=True)
class Peer:
    """A remote endpoint as the local VXLAN device must know it."""

    mac: str
    ip: str
    remote: str  # the node's underlay address


@dataclass(frozen=True)
class NodePlan:
    networks: dict[str, Network]  # a bridge and a VXLAN device for each
    bridge_address: dict[str, tuple[str, str]]  # network -> (address/prefix, MAC)
    peers: dict[str, frozenset[Peer]]
    container_rules: dict[str, str]  # task ID -> nftables ruleset for its namespace
    host_rules: str


def plan_node(
    snapshot: Snapshot,
    node_id: str,
    attachments: dict[str, Attachment],
    gateway_subnet: str,
) -> NodePlan:
    needed = {link.network_id for a in attachments.values() for link in a.links}
    needed &= set(snapshot.networks)
    bridge_address: dict[str, tuple[str, str]] = {}
    ingress = snapshot.ingress()
    own = [e for e in snapshot.endpoints if e.kind == "node" and e.id == node_id]
    if ingress is not None:
        for endpoint in own:
            if endpoint.network_id == ingress.id:
                needed.add(ingress.id)
                bridge_address[ingress.id] = (endpoint.address, endpoint.mac)
    peers = {
        net: frozenset(
            Peer(e.mac, e.ip, e.node_addr)
            for e in snapshot.endpoints
            if e.network_id == net and e.node_id != node_id and e.node_addr
        )
        for net in needed
    }
    live = _live_by_service(snapshot)
    return NodePlan(
        networks={net: snapshot.networks[net] for net in needed},
        bridge_address=bridge_address,
        peers=peers,
        container_rules={
            a.task_id: container_ruleset(a, snapshot.services, live) for a in attachments.values()
        },
        host_rules=host_ruleset(snapshot, node_id, attachments, live, gateway_subnet),
    )


def _live_by_service(snapshot: Snapshot) -> dict[tuple[str, str], list[Endpoint]]:
    """(service ID, network ID) -> the running tasks' endpoints, in a stable order."""
    live: dict[tuple[str, str], list[Endpoint]] = {}
    for endpoint in sorted(snapshot.endpoints, key=lambda e: (e.ip, e.id)):
        if endpoint.kind == "task" and endpoint.live:
            live.setdefault((endpoint.service_id, endpoint.network_id), []).append(endpoint)
    return live


def _numgen(targets: list[str]) -> str:
    pairs = ", ".join(f"{i} : {ip}" for i, ip in enumerate(targets))
    return f"numgen random mod {len(targets)} map {{ {pairs} }}"


def container_ruleset(
    attachment: Attachment,
    services: tuple[Service, ...],
    live: dict[tuple[str, str], list[Endpoint]],
) -> str:
    """Connections to a VIP go to one of the service's running tasks; a VIP
    with none is refused at once rather than left to time out."""
    networks = attachment.networks()
    dnat, reject = [], []
    for service in sorted(services, key=lambda s: s.id):
        for network_id, vip in service.vips:
            if network_id not in networks:
                continue
            targets = [e.ip for e in live.get((service.id, network_id), [])]
            if targets:
                dnat.append(f"ip daddr {vip} dnat to {_numgen(targets)}")
            else:
                reject.append(f"ip daddr {vip} reject")
    return _table(
        LB_TABLE,
        {
            "output": ("type nat hook output priority -100; policy accept;", dnat),
            "refuse": ("type filter hook output priority 0; policy accept;", reject),
        },
    )


def host_ruleset(
    snapshot: Snapshot,
    node_id: str,
    attachments: dict[str, Attachment],
    live: dict[tuple[str, str], list[Endpoint]],
    gateway_subnet: str,
) -> str:
    ingress = snapshot.ingress()
    publish: list[str] = []
    by_task = {a.task_id: a for a in attachments.values()}
    for service in sorted(snapshot.services, key=lambda s: s.id):
        for port in service.ports:
            if port.mode == "ingress" and ingress is not None:
                targets = [e.ip for e in live.get((service.id, ingress.id), [])]
            elif port.mode == "host":  # this node's running tasks, by their gateway address
                targets = sorted(
                    {
                        by_task[e.id].gateway_ip
                        for endpoints in live.values()
                        for e in endpoints
                        if e.service_id == service.id and e.id in by_task
                    }
                )
            else:
                continue
            if targets and port.published:
                publish.append(
                    f"fib daddr type local {port.protocol} dport {port.published} "
                    f"dnat to {_numgen(targets)} : {port.target}"
                )
    masquerade = [f'ip saddr {gateway_subnet} oifname != "{GATEWAY_BRIDGE}" masquerade']
    if ingress is not None:
        masquerade.append(f'oifname "{bridge_name(ingress.id)}" masquerade')
    overlays = sorted(n.subnet for n in snapshot.networks.values())
    isolate = [f'iifname "{GATEWAY_BRIDGE}" oifname "{GATEWAY_BRIDGE}" drop']
    if overlays:
        isolate.append(f'iifname "{GATEWAY_BRIDGE}" ip daddr {{ {", ".join(overlays)} }} drop')
    # The outer VXLAN packets are never NATed: conntrack on them is pure cost on
    # the overlay's hot path (a lookup per packet, twice per host crossed) and
    # fills the table with one entry per source-port hash of every flow.
    untracked = [f"udp dport {VXLAN_PORT} notrack"]
    return _table(
        HOST_TABLE,
        {
            "untracked_in": ("type filter hook prerouting priority raw; policy accept;", untracked),
            "untracked_out": ("type filter hook output priority raw; policy accept;", untracked),
            "prerouting": ("type nat hook prerouting priority -100; policy accept;", publish),
            "output": ("type nat hook output priority -100; policy accept;", publish),
            "postrouting": ("type nat hook postrouting priority 100; policy accept;", masquerade),
            "forward": ("type filter hook forward priority 0; policy accept;", isolate),
        },
    )


def _table(name: str, chains: dict[str, tuple[str, list[str]]]) -> str:
    """A whole table, replaced in one nft transaction (declared, deleted, made)."""
    lines = [f"table ip {name}", f"delete table ip {name}", f"table ip {name} {{"]
    for chain, (hook, rules) in chains.items():
        lines.append(f"  chain {chain} {{")
        lines.append(f"    {hook}")
        lines.extend(f"    {rule}" for rule in rules)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
