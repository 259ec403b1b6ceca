"""IP address management over plain values: subnets out of the cluster's pool,
host addresses out of a subnet, MACs, VXLAN network identifiers and ingress
ports. No store here: callers say what is taken, these functions pick.

Only IPv4: the overlay data path (netd) carries IPv4 only.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, ip_network

from api.addresses import mac_for as mac_for  # part of this module's API

OVERLAP = "invalid pool request: Pool overlaps with other one on this address space"
NO_POOL = (
    "could not find an available, non-overlapping IPv4 address pool among the defaults "
    "to assign to the network"
)
VXLAN_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
# Docker's ingress network takes 4096; the networks users create start above it.
INGRESS_VNI = 4096
FIRST_VNI = 4097
MAX_VNI = (1 << 24) - 1  # a VNI is 24 bits
FIRST_PORT, LAST_PORT = 30000, 32767
# A subnet needs a gateway and at least one more host address.
SMALLEST_PREFIX = 30


class IPAMError(ValueError):
    """A request that cannot be met; the message is meant for the user."""


class InvalidSubnet(IPAMError):
    pass


class PoolOverlap(IPAMError):
    def __init__(self) -> None:
        super().__init__(OVERLAP)


class Exhausted(IPAMError):
    pass


def host_of(address: str) -> str:
    """ "10.0.1.3/24" -> "10.0.1.3" (a plain address stays as it is)."""
    return address.split("/", 1)[0]


def parse_subnet(subnet: str) -> IPv4Network:
    """A CIDR subnet; host bits are dropped ("10.0.1.5/24" is 10.0.1.0/24)."""
    if "/" not in subnet:
        raise InvalidSubnet(f"invalid CIDR address: {subnet}")
    try:
        network = ip_network(subnet, strict=False)
    except ValueError:
        raise InvalidSubnet(f"invalid CIDR address: {subnet}") from None
    if not isinstance(network, IPv4Network):
        raise InvalidSubnet(f"only IPv4 subnets are supported: {subnet}")
    return network


def _usable(subnet: str) -> IPv4Network:
    network = parse_subnet(subnet)
    if network.prefixlen > SMALLEST_PREFIX:
        raise InvalidSubnet(f"subnet {subnet} is too small: it needs a gateway and an address")
    return network


def check_subnet(subnet: str, taken: Iterable[str]) -> str:
    """The canonical form of a subnet a user asked for; PoolOverlap if it
    overlaps any taken subnet."""
    network = _usable(subnet)
    if any(network.overlaps(parse_subnet(t)) for t in taken):
        raise PoolOverlap()
    return str(network)


def pick_subnet(pool: str, size: int, taken: Iterable[str]) -> str:
    """The first /size subnet of `pool` that overlaps no taken subnet."""
    pool_net = parse_subnet(pool)
    if not pool_net.prefixlen <= size <= SMALLEST_PREFIX:
        raise InvalidSubnet(f"invalid subnet size {size} for address pool {pool}")
    block = 1 << (32 - size)
    spans = sorted(
        (int(n.network_address), int(n.broadcast_address)) for n in map(parse_subnet, taken)
    )
    # The pool starts on a /size boundary (its prefix is no longer than size),
    # so rounding up to a multiple of `block` stays on subnet boundaries.
    candidate = int(pool_net.network_address)
    for low, high in spans:  # sorted by start: one sweep finds the first gap
        if high < candidate:
            continue
        if low > candidate + block - 1:
            break
        candidate = (high + block) // block * block
    if candidate + block - 1 > int(pool_net.broadcast_address):
        raise Exhausted(NO_POOL)
    return f"{IPv4Address(candidate)}/{size}"


def gateway_for(subnet: str) -> str:
    """Docker's default gateway: the subnet's first host address."""
    return str(_usable(subnet).network_address + 1)


def check_gateway(subnet: str, gateway: str) -> str:
    network = _usable(subnet)
    try:
        address = IPv4Address(host_of(gateway))
    except ValueError:
        raise InvalidSubnet(f"invalid gateway address: {gateway}") from None
    if address not in network or address in (network.network_address, network.broadcast_address):
        raise InvalidSubnet(f"no matching subnet for gateway {gateway}")
    return str(address)


class AddressSpace:
    """The free host addresses of one subnet, handed out lowest first. Never
    the network, broadcast or gateway address, nor one said to be used."""

    def __init__(self, subnet: str, gateway: str, used: Iterable[str] = ()) -> None:
        self.network = _usable(subnet)
        self.subnet = str(self.network)
        self._used = {int(IPv4Address(host_of(a))) for a in used}
        self._used.add(int(IPv4Address(host_of(gateway))))
        self._first = int(self.network.network_address) + 1
        self._last = int(self.network.broadcast_address) - 1
        # Every address below the cursor is used: a batch of picks walks the
        # subnet once instead of from the start each time.
        self._cursor = self._first

    def take(self) -> str:
        address = self._cursor
        while address <= self._last and address in self._used:
            address += 1
        if address > self._last:
            raise Exhausted(f"no available IPv4 addresses on subnet {self.subnet}")
        self._used.add(address)
        self._cursor = address + 1
        return str(IPv4Address(address))

    def release(self, address: str) -> None:
        value = int(IPv4Address(host_of(address)))
        self._used.discard(value)
        self._cursor = max(self._first, min(self._cursor, value))

    def with_prefix(self, address: str) -> str:
        return f"{host_of(address)}/{self.network.prefixlen}"


def pick_address(subnet: str, gateway: str, used: Iterable[str]) -> str:
    """The lowest free host address of `subnet` (plain, without the prefix)."""
    return AddressSpace(subnet, gateway, used).take()


def pick_vni(used: Iterable[int]) -> int:
    taken = set(used)
    vni = FIRST_VNI
    while vni in taken:
        vni += 1
    if vni > MAX_VNI:
        raise Exhausted("no VXLAN network identifier is left")
    return vni


def check_vni(text: str, used: Iterable[int]) -> int:
    """A VNI a user asked for (the first of Docker's vxlanid_list option)."""
    first = text.split(",", 1)[0].strip()
    try:
        vni = int(first)
    except ValueError:
        raise InvalidSubnet(f"invalid vxlanid value: {text}") from None
    if not 1 <= vni <= MAX_VNI:
        raise InvalidSubnet(f"vxlanid {vni} is out of range (1-{MAX_VNI})")
    if vni in set(used):
        raise IPAMError(f"vxlanid {vni} is already in use")
    return vni


def pick_port(used: Iterable[int]) -> int:
    """The lowest free port of Docker's dynamic range for published ports."""
    taken = set(used)
    for port in range(FIRST_PORT, LAST_PORT + 1):
        if port not in taken:
            return port
    raise Exhausted(f"no free port is left in the range {FIRST_PORT}-{LAST_PORT}")
