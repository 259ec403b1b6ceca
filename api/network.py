"""Networks, as two JSON shapes: the swarm network object that appears inside
tasks (NetworksAttachments) and Docker's network resource that /networks serves
(capital `Id`, every field written). Plus published ports and endpoints, which
services and tasks share."""

from __future__ import annotations

import msgspec

from api.base import ZERO_TIME, Annotations, Driver, Meta, Obj, always, always_new

PROTOCOLS = ("tcp", "udp", "sctp")
PUBLISH_MODES = ("ingress", "host")
RESOLUTION_MODES = ("vip", "dnsrr")


class PortConfig(Obj):
    name: str = ""
    protocol: str = ""
    target_port: int = 0
    published_port: int = 0
    publish_mode: str = ""


class EndpointSpec(Obj):
    mode: str = ""
    ports: list[PortConfig] = msgspec.field(default_factory=list)


class EndpointVirtualIP(Obj):
    network_id: str = msgspec.field(default="", name="NetworkID")
    addr: str = ""


class Endpoint(Obj):
    """A service's endpoint as allocated: ports with their published numbers, VIPs."""

    spec: EndpointSpec = always_new(EndpointSpec)
    ports: list[PortConfig] = msgspec.field(default_factory=list)
    virtual_ips: list[EndpointVirtualIP] = msgspec.field(default_factory=list, name="VirtualIPs")


class NetworkAttachmentConfig(Obj):
    """A service's wish to join a network. Target is an ID or a name as sent;
    the server resolves it to the ID."""

    target: str = ""
    aliases: list[str] = msgspec.field(default_factory=list)
    driver_opts: dict[str, str] = msgspec.field(default_factory=dict)


# --- the swarm network object (inside tasks) ---------------------------------


class SwarmIPAMConfig(Obj):
    subnet: str = ""
    range: str = ""
    gateway: str = ""


class IPAMOptions(Obj):
    driver: Driver = always_new(Driver)
    configs: list[SwarmIPAMConfig] = msgspec.field(default_factory=list)


class NetworkConfigReference(Obj):
    """A network whose configuration another (config-only) network provides."""

    network: str = always("")


class SwarmNetworkSpec(Annotations):
    driver_configuration: Driver | None = None
    ipv6_enabled: bool = msgspec.field(default=False, name="IPv6Enabled")
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    ipam_options: IPAMOptions | None = msgspec.field(default=None, name="IPAMOptions")
    config_from: NetworkConfigReference | None = None
    scope: str = ""


class SwarmNetwork(Meta):
    spec: SwarmNetworkSpec = always_new(SwarmNetworkSpec)
    driver_state: Driver = always_new(Driver)
    ipam_options: IPAMOptions | None = msgspec.field(default=None, name="IPAMOptions")


class NetworkAttachment(Obj):
    """A task's place on a network: the network and the task's CIDR addresses."""

    network: SwarmNetwork = always_new(SwarmNetwork)
    addresses: list[str] = msgspec.field(default_factory=list)


# --- Docker's network resource (/networks) -------------------------------------


class IPAMPoolConfig(Obj):
    subnet: str = ""
    ip_range: str = msgspec.field(default="", name="IPRange")
    gateway: str = ""
    aux_address: dict[str, str] = msgspec.field(default_factory=dict, name="AuxiliaryAddresses")


class IPAM(Obj):
    driver: str = always("default")
    options: dict[str, str] = always_new(dict)
    config: list[IPAMPoolConfig] = always_new(list)


class EndpointResource(msgspec.Struct, rename="pascal"):
    name: str = ""
    endpoint_id: str = msgspec.field(default="", name="EndpointID")
    mac_address: str = ""
    ipv4_address: str = msgspec.field(default="", name="IPv4Address")
    ipv6_address: str = msgspec.field(default="", name="IPv6Address")


class PeerInfo(msgspec.Struct, rename="pascal"):
    name: str = ""
    ip: str = msgspec.field(default="", name="IP")


class ServiceBackend(msgspec.Struct, rename="pascal"):
    """One task behind a service VIP, as `network inspect --verbose` lists it."""

    name: str = ""
    endpoint_id: str = msgspec.field(default="", name="EndpointID")
    endpoint_ip: str = msgspec.field(default="", name="EndpointIP")
    info: dict[str, str] = msgspec.field(default_factory=dict)


class ServiceInfo(msgspec.Struct, rename="pascal"):
    vip: str = msgspec.field(default="", name="VIP")
    ports: list[str] = msgspec.field(default_factory=list)
    local_lb_index: int = msgspec.field(default=0, name="LocalLBIndex")
    tasks: list[ServiceBackend] = msgspec.field(default_factory=list)


class Network(Obj):
    """Docker's network JSON. Go writes every field but Peers and Services."""

    name: str = always("")
    id: str = always("", name="Id")
    created: str = always(ZERO_TIME)
    scope: str = always("swarm")
    driver: str = always("overlay")
    enable_ipv6: bool = always(False, name="EnableIPv6")
    ipam: IPAM = always_new(IPAM, name="IPAM")
    internal: bool = always(False)
    attachable: bool = always(False)
    ingress: bool = always(False)
    config_from: NetworkConfigReference = always_new(NetworkConfigReference)
    config_only: bool = always(False)
    containers: dict[str, EndpointResource] = always_new(dict)
    options: dict[str, str] = always_new(dict)
    labels: dict[str, str] = always_new(dict)
    peers: list[PeerInfo] = msgspec.field(default_factory=list)
    services: dict[str, ServiceInfo] = msgspec.field(default_factory=dict)


class NetworkCreateRequest(Obj):
    name: str = ""
    check_duplicate: bool = False
    driver: str = ""
    scope: str = ""
    enable_ipv6: bool = msgspec.field(default=False, name="EnableIPv6")
    ipam: IPAM | None = msgspec.field(default=None, name="IPAM")
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    config_only: bool = False
    config_from: NetworkConfigReference | None = None
    options: dict[str, str] = msgspec.field(default_factory=dict)
    labels: dict[str, str] = always_new(dict)


class NetworkCreateResponse(Obj):
    id: str = always("", name="Id")
    warning: str = always("")
