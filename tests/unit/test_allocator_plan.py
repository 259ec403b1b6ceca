"""The allocator's pure planners: network IPAM, task and node addresses,
published ports and VIPs."""

from __future__ import annotations

import pytest

from manager.allocator.attachments import (
    Attach,
    Unallocated,
    plan_attachments,
    task_attachment,
)
from manager.allocator.endpoint import EndpointError, plan_ports, plan_vips, vip_networks
from manager.allocator.ipam import OVERLAP, VXLAN_OPTION, IPAMError
from manager.allocator.networks import ingress_network, plan_ipam
from manager.allocator.usage import NetworkInfo, network_info

POOLS = ["10.0.0.0/8"]
FRONT = NetworkInfo("front", "front", 4097, "10.0.1.0/24", "10.0.1.1")
TINY = NetworkInfo("tiny", "tiny", 4098, "10.0.2.0/30", "10.0.2.1")


def test_network_ipam_defaults_and_given_values() -> None:
    ipam, options = plan_ipam(None, {}, POOLS, 24, ["10.0.0.0/24"], {4096})
    assert ipam["Config"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
    assert ipam["Driver"] == "default" and options == {VXLAN_OPTION: "4097"}
    given = {"Config": [{"Subnet": "192.168.7.0/24", "Gateway": "192.168.7.254"}]}
    ipam, options = plan_ipam(given, {"x": "y"}, POOLS, 24, [], {4096, 4097})
    assert ipam["Config"] == [{"Subnet": "192.168.7.0/24", "Gateway": "192.168.7.254"}]
    assert options == {"x": "y", VXLAN_OPTION: "4098"}
    _, options = plan_ipam(None, {VXLAN_OPTION: "7000"}, POOLS, 24, [], set())
    assert options[VXLAN_OPTION] == "7000"
    with pytest.raises(IPAMError, match=OVERLAP):
        plan_ipam({"Config": [{"Subnet": "10.0.0.0/16"}]}, {}, POOLS, 24, ["10.0.0.0/24"], set())
    with pytest.raises(IPAMError, match="corresponding subnet"):
        plan_ipam({"Config": [{"Gateway": "10.0.0.1"}]}, {}, POOLS, 24, [], set())
    # The second pool serves once the first is full.
    ipam, _ = plan_ipam(None, {}, ["10.9.0.0/24", "10.8.0.0/16"], 24, ["10.9.0.0/24"], set())
    assert ipam["Config"][0]["Subnet"] == "10.8.0.0/24"


def test_ingress_network_takes_the_first_subnet_and_vni_4096() -> None:
    ingress = ingress_network("i" * 25, POOLS, 24)
    assert ingress["Name"] == "ingress" and ingress["Ingress"] is True
    info = network_info(ingress)
    assert info == NetworkInfo("i" * 25, "ingress", 4096, "10.0.0.0/24", "10.0.0.1", ingress=True)


def test_owners_get_distinct_addresses_all_or_none() -> None:
    networks = {"front": FRONT, "tiny": TINY}
    requests = [
        (("task", "t1"), ("front", "tiny")),
        (("task", "t2"), ("front", "tiny")),  # tiny has one free address: t2 waits
        (("node", "n1"), ("front",)),
        (("task", "t3"), ("gone",)),
    ]
    decisions = plan_attachments(requests, networks, {"front": {"10.0.1.2"}})
    assert decisions == [
        Attach(("task", "t1"), (("front", "10.0.1.3/24"), ("tiny", "10.0.2.2/30"))),
        Unallocated(
            ("task", "t2"), "network tiny: no available IPv4 addresses on subnet 10.0.2.0/30"
        ),
        # t2's address on front went back.
        Attach(("node", "n1"), (("front", "10.0.1.4/24"),)),
        Unallocated(("task", "t3"), "network gone has no address space"),
    ]
    attachment = task_attachment(FRONT, "10.0.1.3/24")
    assert attachment["Network"]["DriverState"]["Options"] == {VXLAN_OPTION: "4097"}
    assert attachment["Network"]["IPAMOptions"]["Configs"] == [
        {"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}
    ]
    assert attachment["Addresses"] == ["10.0.1.3/24"]


def test_ports_given_kept_or_picked() -> None:
    taken = {("tcp", 8080): ("web", "w" * 25), ("tcp", 30000): ("api", "a" * 25)}
    ports = plan_ports(
        [
            {"TargetPort": 80},
            {"TargetPort": 53, "Protocol": "udp"},
            {"TargetPort": 81, "PublishedPort": 30001},
            {"TargetPort": 22, "PublishMode": "host"},
        ],
        [],
        taken,
    )
    assert ports == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30002, "PublishMode": "ingress"},
        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 30000, "PublishMode": "ingress"},
        {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 30001, "PublishMode": "ingress"},
        {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": 0, "PublishMode": "host"},
    ]
    # An update keeps the published port of an unchanged target port.
    again = plan_ports([{"TargetPort": 80}], ports, taken)
    assert again[0]["PublishedPort"] == 30002
    with pytest.raises(EndpointError) as info:
        plan_ports([{"TargetPort": 80, "PublishedPort": 8080}], [], taken)
    assert str(info.value) == (
        "rpc error: code = InvalidArgument desc = port '8080' is already in use by service "
        f"'web' ({'w' * 25}) as an ingress port"
    )
    # Another protocol on the same number is free.
    assert plan_ports([{"TargetPort": 80, "PublishedPort": 8080, "Protocol": "udp"}], [], taken)


def test_vips_keep_unchanged_networks() -> None:
    spec = {"TaskTemplate": {"Networks": [{"Target": "front"}, {"Target": "back"}]}}
    ingress_port = [{"PublishMode": "ingress", "PublishedPort": 30000}]
    assert vip_networks(spec, ingress_port, "ing") == ["ing", "front", "back"]
    assert vip_networks(spec, [], "ing") == ["front", "back"]
    old = [{"NetworkID": "front", "Addr": "10.0.1.2/24"}, {"NetworkID": "gone", "Addr": "x"}]
    kept, missing = plan_vips(["ing", "front", "back"], old)
    assert kept == {"front": old[0]} and missing == ["ing", "back"]
