"""The cluster's network state as netd sees it: what the dispatcher's
/shoal/dispatcher/networks answers, as frozen values, and what netd keeps of
its own (the containers it attached on this node)."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from api.addresses import mac_for


def bare(address: str) -> str:
    """10.0.1.3/24 -> 10.0.1.3"""
    return address.split("/", 1)[0]


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    vni: int
    subnet: str
    gateway: str
    internal: bool = False
    ingress: bool = False

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen


@dataclass(frozen=True)
class Endpoint:
    network_id: str
    kind: str  # task | node
    id: str
    node_id: str
    node_addr: str  # the node's underlay address: where its VXLAN traffic goes
    address: str  # with prefix, 10.0.1.3/24
    mac: str
    names: tuple[str, ...] = ()
    service_id: str = ""
    service_name: str = ""
    live: bool = False

    @property
    def ip(self) -> str:
        return bare(self.address)


@dataclass(frozen=True)
class Port:
    protocol: str
    target: int
    published: int
    mode: str  # ingress | host


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    mode: str  # vip | dnsrr
    vips: tuple[tuple[str, str], ...]  # (network ID, bare IP)
    ports: tuple[Port, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    index: int
    networks: dict[str, Network] = field(default_factory=dict)
    endpoints: tuple[Endpoint, ...] = ()
    services: tuple[Service, ...] = ()

    def ingress(self) -> Network | None:
        return next((n for n in self.networks.values() if n.ingress), None)


def parse_snapshot(data: dict[str, Any]) -> Snapshot:
    networks = {
        str(n["ID"]): Network(
            id=str(n["ID"]),
            name=str(n.get("Name") or ""),
            vni=int(n["VNI"]),
            subnet=str(n["Subnet"]),
            gateway=str(n.get("Gateway") or ""),
            internal=bool(n.get("Internal")),
            ingress=bool(n.get("Ingress")),
        )
        for n in data.get("Networks") or []
    }
    endpoints = tuple(
        Endpoint(
            network_id=str(e["NetworkID"]),
            kind=str(e.get("Kind") or "task"),
            id=str(e["ID"]),
            node_id=str(e.get("NodeID") or ""),
            node_addr=str(e.get("NodeAddr") or ""),
            address=str(e["Address"]),
            mac=str(e.get("MAC") or mac_for(bare(str(e["Address"])))),
            names=tuple(str(x) for x in e.get("Names") or []),
            service_id=str(e.get("ServiceID") or ""),
            service_name=str(e.get("ServiceName") or ""),
            live=bool(e.get("Live")),
        )
        for e in data.get("Endpoints") or []
        if str(e.get("NetworkID")) in networks
    )
    services = tuple(
        Service(
            id=str(s["ID"]),
            name=str(s.get("Name") or ""),
            mode=str(s.get("EndpointMode") or "vip"),
            vips=tuple((str(v["NetworkID"]), bare(str(v["Address"]))) for v in s.get("VIPs") or []),
            ports=tuple(
                Port(
                    str(p.get("Protocol") or "tcp"),
                    int(p["TargetPort"]),
                    int(p.get("PublishedPort") or 0),
                    str(p.get("PublishMode") or "ingress"),
                )
                for p in s.get("Ports") or []
            ),
        )
        for s in data.get("Services") or []
    )
    return Snapshot(int(data.get("Index") or 0), networks, endpoints, services)


@dataclass(frozen=True)
class Link:
    """One of a container's interfaces on an overlay network."""

    network_id: str
    host_veth: str  # the end on the network's bridge
    address: str  # with prefix
    mac: str


@dataclass(frozen=True)
class Attachment:
    """A container netd attached on this node: its namespace, its address on
    the node's gateway bridge (egress, DNS), and its overlay links."""

    task_id: str
    netns: str
    gateway_veth: str
    gateway_ip: str
    links: tuple[Link, ...]

    def networks(self) -> frozenset[str]:
        return frozenset(link.network_id for link in self.links)


def save_attachments(path: Path, attachments: dict[str, Attachment]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(a) for a in attachments.values()], indent=1))
    tmp.replace(path)


def load_attachments(path: Path) -> dict[str, Attachment]:
    if not path.exists():
        return {}
    loaded = {}
    for item in json.loads(path.read_text()):
        links = tuple(Link(**link) for link in item.pop("links"))
        attachment = Attachment(links=links, **item)
        loaded[attachment.task_id] = attachment
    return loaded
