"""IPAM over plain values: subnets from the pool, host addresses, MACs, VNIs
and ingress ports."""

from __future__ import annotations

import ipaddress
import random
import re

import pytest

from manager.allocator.ipam import (
    OVERLAP,
    AddressSpace,
    Exhausted,
    InvalidSubnet,
    IPAMError,
    PoolOverlap,
    check_gateway,
    check_subnet,
    check_vni,
    gateway_for,
    mac_for,
    pick_address,
    pick_port,
    pick_subnet,
    pick_vni,
)


def test_subnets_come_from_the_pool_in_order_around_taken_ones() -> None:
    assert pick_subnet("10.0.0.0/8", 24, []) == "10.0.0.0/24"
    assert pick_subnet("10.0.0.0/8", 24, ["10.0.0.0/24"]) == "10.0.1.0/24"
    assert pick_subnet("10.0.0.0/8", 24, ["10.0.1.0/24", "10.0.0.0/24"]) == "10.0.2.0/24"
    # A wider taken subnet, a narrower one inside a /24, and one outside the pool.
    taken = ["10.0.0.0/23", "10.0.2.128/25", "192.168.0.0/16"]
    assert pick_subnet("10.0.0.0/8", 24, taken) == "10.0.3.0/24"
    # A gap left by a removed network is used again.
    assert pick_subnet("10.0.0.0/8", 24, ["10.0.0.0/24", "10.0.2.0/24"]) == "10.0.1.0/24"
    # A taken subnet wider than the pool covers it all.
    with pytest.raises(Exhausted, match="non-overlapping"):
        pick_subnet("10.1.0.0/16", 24, ["10.0.0.0/8"])
    assert pick_subnet("172.20.0.0/16", 26, ["172.20.0.0/26"]) == "172.20.0.64/26"


def test_pool_exhaustion_and_bad_sizes() -> None:
    with pytest.raises(Exhausted):
        pick_subnet("10.0.0.0/29", 30, ["10.0.0.0/30", "10.0.0.4/30"])
    with pytest.raises(InvalidSubnet):
        pick_subnet("10.0.0.0/16", 8, [])
    with pytest.raises(InvalidSubnet):
        pick_subnet("10.0.0.0/16", 31, [])
    with pytest.raises(InvalidSubnet):
        pick_subnet("not-a-pool", 24, [])


def test_a_given_subnet_is_checked_for_overlap_and_form() -> None:
    assert check_subnet("10.0.5.0/24", ["10.0.0.0/24"]) == "10.0.5.0/24"
    assert check_subnet("10.0.5.7/24", []) == "10.0.5.0/24"  # host bits dropped
    with pytest.raises(PoolOverlap) as info:
        check_subnet("10.0.0.128/25", ["10.0.0.0/24"])
    assert str(info.value) == OVERLAP
    with pytest.raises(PoolOverlap):
        check_subnet("10.0.0.0/16", ["10.0.3.0/24"])
    for bad in ("10.0.300.0/24", "10.0.0.1", "fd00::/64", "10.0.0.0/31", "x"):
        with pytest.raises(InvalidSubnet):
            check_subnet(bad, [])
    assert issubclass(PoolOverlap, ValueError) and issubclass(InvalidSubnet, IPAMError)


def test_gateways() -> None:
    assert gateway_for("10.0.1.0/24") == "10.0.1.1"
    assert check_gateway("10.0.1.0/24", "10.0.1.254") == "10.0.1.254"
    for bad in ("10.0.2.1", "10.0.1.0", "10.0.1.255", "nope"):
        with pytest.raises(InvalidSubnet):
            check_gateway("10.0.1.0/24", bad)


def test_addresses_lowest_first_never_network_broadcast_gateway_or_used() -> None:
    assert pick_address("10.0.1.0/24", "10.0.1.1", set()) == "10.0.1.2"
    assert pick_address("10.0.1.0/24", "10.0.1.1", {"10.0.1.2", "10.0.1.3/24"}) == "10.0.1.4"
    assert pick_address("10.0.1.0/24", "10.0.1.2", set()) == "10.0.1.1"
    # A /30 has two host addresses: the gateway and one more.
    assert pick_address("10.0.1.0/30", "10.0.1.1", set()) == "10.0.1.2"
    full = "no available IPv4 addresses on subnet 10.0.1.0/30"
    with pytest.raises(Exhausted, match=re.escape(full)):
        pick_address("10.0.1.0/30", "10.0.1.1", {"10.0.1.2"})
    space = AddressSpace("10.0.1.0/24", "10.0.1.1", {"10.0.1.3"})
    assert [space.take() for _ in range(3)] == ["10.0.1.2", "10.0.1.4", "10.0.1.5"]
    space.release("10.0.1.2/24")
    assert space.take() == "10.0.1.2" and space.take() == "10.0.1.6"
    assert space.with_prefix("10.0.1.6") == "10.0.1.6/24"


def test_mac_vni_and_port() -> None:
    assert mac_for("10.0.1.3") == "02:42:0a:00:01:03"
    assert mac_for("10.0.1.3/24") == "02:42:0a:00:01:03"
    assert mac_for("192.168.255.10") == "02:42:c0:a8:ff:0a"
    assert pick_vni(set()) == 4097
    assert pick_vni({4096, 4097, 4099}) == 4098
    assert check_vni("5000", {4097}) == 5000
    with pytest.raises(IPAMError, match="already in use"):
        check_vni("4097", {4097})
    with pytest.raises(IPAMError):
        check_vni("0", set())
    assert pick_port(set()) == 30000
    assert pick_port({30000, 30002}) == 30001
    with pytest.raises(Exhausted):
        pick_port(set(range(30000, 32768)))


def test_a_thousand_address_cycles_end_where_they_started() -> None:
    rng = random.Random(7)
    subnet, gateway = "10.0.9.0/26", "10.0.9.1"
    network = ipaddress.IPv4Network(subnet)
    first = pick_address(subnet, gateway, set())
    held: set[str] = set()
    space = AddressSpace(subnet, gateway)  # the batch form, with releases
    space_held: set[str] = set()
    for _ in range(1000):
        if held and (rng.random() < 0.45 or len(held) >= 61):
            held.discard(rng.choice(sorted(held)))
        else:
            address = pick_address(subnet, gateway, held)
            assert address not in held and address != gateway
            assert ipaddress.IPv4Address(address) in network
            assert address not in (str(network.network_address), str(network.broadcast_address))
            held.add(address)
        if space_held and (rng.random() < 0.45 or len(space_held) >= 61):
            released = rng.choice(sorted(space_held))
            space.release(released)
            space_held.discard(released)
        else:
            address = space.take()
            assert address not in space_held and address != gateway
            space_held.add(address)
    for address in space_held:
        space.release(address)
    assert pick_address(subnet, gateway, set()) == first == space.take()


def test_a_thousand_subnet_cycles_end_where_they_started() -> None:
    rng = random.Random(11)
    pool = "10.0.0.0/20"  # sixteen /24s: the pool fills up and empties again
    taken: list[str] = []
    first = pick_subnet(pool, 24, [])
    for _ in range(1000):
        if taken and (rng.random() < 0.45 or len(taken) == 16):
            taken.remove(rng.choice(taken))
            continue
        subnet = pick_subnet(pool, 24, taken)
        new = ipaddress.IPv4Network(subnet)
        assert not any(new.overlaps(ipaddress.IPv4Network(t)) for t in taken)
        assert new.subnet_of(ipaddress.IPv4Network(pool))
        taken.append(subnet)
    taken.clear()
    assert pick_subnet(pool, 24, taken) == first == "10.0.0.0/24"
