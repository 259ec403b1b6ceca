"""What a lab is: its name, its hosts and their addresses — pure values, no I/O.

Every name the lab gives to a kernel object is derived here from the lab's
name, so teardown can find what a crashed `lab up` left even without its record.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LAB_NAME = "lab"
DEFAULT_UNDERLAY = ipaddress.IPv4Network("198.18.0.0/24")
# Where `lab up` looks for a free /24 when none is given: RFC 2544's benchmarking
# range, which no real network routes.
AUTO_UNDERLAY_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
DEFAULT_LAB_ROOT = Path("/var/lib/shoal/labs")

# Host i gets the (HOST_ADDRESS_OFFSET + i)-th address of the underlay; .1 is the
# root namespace's own address on the lab, so users' tools reach the hosts.
HOST_ADDRESS_OFFSET = 10
REGISTRY_PORT = 5000

# Link names are limited to 15 bytes: "shl-" + name must fit.
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,9}$")


class LabSpecError(ValueError):
    """A lab that cannot be built as asked; the message is meant for the user."""


def validate_lab_name(name: str) -> str:
    if not _NAME_RE.match(name) or name.endswith("-"):
        raise LabSpecError(
            f"invalid lab name {name!r}: use 1-10 characters, lowercase letters, digits "
            "and '-', starting with a letter"
        )
    return name


def parse_underlay(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise LabSpecError(f"invalid underlay subnet {text!r}: {exc}") from None
    if net.prefixlen > 28:
        raise LabSpecError(f"underlay subnet {text} is too small: use a /28 or larger")
    return net


@dataclass(frozen=True)
class HostSpec:
    index: int
    lab: str
    address: ipaddress.IPv4Address
    prefixlen: int
    directory: Path

    @property
    def name(self) -> str:
        """The short name users type: `h1`, `h2`, ..."""
        return f"h{self.index}"

    @property
    def hostname(self) -> str:
        return f"{self.lab}-h{self.index}"

    @property
    def netns(self) -> str:
        return f"shoal-{self.lab}-h{self.index}"

    @property
    def switch_port(self) -> str:
        """The veth end in the switch namespace that leads to this host."""
        return f"h{self.index}"

    @property
    def mount_ns_file(self) -> Path:
        return self.directory.parent / "ns" / f"{self.name}.mnt"

    @property
    def uts_ns_file(self) -> Path:
        return self.directory.parent / "ns" / f"{self.name}.uts"

    @property
    def containerd_socket(self) -> Path:
        return self.directory / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.directory / "containerd.toml"


@dataclass(frozen=True)
class LabSpec:
    name: str
    hosts: int
    underlay: ipaddress.IPv4Network
    root: Path = DEFAULT_LAB_ROOT

    def __post_init__(self) -> None:
        validate_lab_name(self.name)
        if self.hosts < 1:
            raise LabSpecError(f"--hosts must be at least 1, not {self.hosts}")
        if self.hosts > max_hosts(self.underlay):
            raise LabSpecError(
                f"underlay {self.underlay} has room for {max_hosts(self.underlay)} hosts, "
                f"not {self.hosts}"
            )

    @property
    def directory(self) -> Path:
        return self.root / self.name

    @property
    def ns_directory(self) -> Path:
        return self.directory / "ns"

    @property
    def switch_netns(self) -> str:
        return f"shoal-{self.name}-sw"

    @property
    def root_link(self) -> str:
        """The veth end in the machine's own namespace, carrying the lab's .1 address."""
        return f"shl-{self.name}"

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.underlay.network_address + 1

    @property
    def client_certs(self) -> Path:
        """The admin client certificate the lab writes for its user: ca.pem,
        cert.pem and key.pem, as DOCKER_CERT_PATH wants them."""
        return self.directory / "client"

    @property
    def registry_address(self) -> str:
        return f"{self.host(1).address}:{REGISTRY_PORT}"

    def host(self, index: int) -> HostSpec:
        return HostSpec(
            index=index,
            lab=self.name,
            address=self.underlay.network_address + HOST_ADDRESS_OFFSET + index,
            prefixlen=self.underlay.prefixlen,
            directory=self.directory / f"h{index}",
        )

    def all_hosts(self) -> list[HostSpec]:
        return [self.host(i) for i in range(1, self.hosts + 1)]


def max_hosts(underlay: ipaddress.IPv4Network) -> int:
    # Leave out the network address, .1..HOST_ADDRESS_OFFSET and the broadcast.
    return max(0, underlay.num_addresses - HOST_ADDRESS_OFFSET - 2)


def netns_belongs_to_lab(netns: str, lab: str) -> bool:
    """True for exactly the namespace names a lab called `lab` creates: its
    switch, its hosts, and its containers' (netd names them `shoal-<lab>-ct<12 of the
    task ID>`, a shape no other lab's host can take)."""
    pattern = rf"shoal-{re.escape(lab)}-(sw|h[0-9]+|ct[0-9a-z]{{12}})"
    return re.fullmatch(pattern, netns) is not None


def resolve_host(spec: LabSpec, text: str) -> HostSpec:
    """Accepts `h2`, `2` or the hostname `lab-h2`."""
    for host in spec.all_hosts():
        if text in (host.name, str(host.index), host.hostname):
            return host
    names = ", ".join(h.name for h in spec.all_hosts())
    raise LabSpecError(f"lab {spec.name!r} has no host {text!r} (hosts: {names})")


def pick_underlay(taken: list[ipaddress.IPv4Network], hosts: int) -> ipaddress.IPv4Network:
    """The first /24 of the benchmarking range that overlaps nothing in `taken`."""
    for candidate in AUTO_UNDERLAY_RANGE.subnets(new_prefix=24):
        if max_hosts(candidate) >= hosts and not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise LabSpecError(f"no free /24 left in {AUTO_UNDERLAY_RANGE} for the lab's underlay")


def check_underlay_free(
    underlay: ipaddress.IPv4Network, routes: list[ipaddress.IPv4Network]
) -> None:
    for route in routes:
        if underlay.overlaps(route):
            raise LabSpecError(
                f"underlay {underlay} overlaps the route {route} this machine already has; "
                "choose another with --underlay"
            )
