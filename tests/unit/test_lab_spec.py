"""Naming, addressing and validation of a lab, without touching the machine."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from lab.spec import (
    LabSpec,
    LabSpecError,
    check_underlay_free,
    netns_belongs_to_lab,
    parse_underlay,
    pick_underlay,
    resolve_host,
    validate_lab_name,
)

NET = ipaddress.IPv4Network


def spec(hosts: int = 3, underlay: str = "198.18.0.0/24") -> LabSpec:
    return LabSpec("demo", hosts, NET(underlay), Path("/labs"))


def test_hosts_get_distinct_addresses_names_and_directories() -> None:
    hosts = spec().all_hosts()
    assert [str(h.address) for h in hosts] == ["198.18.0.11", "198.18.0.12", "198.18.0.13"]
    assert [h.hostname for h in hosts] == ["demo-h1", "demo-h2", "demo-h3"]
    assert [h.netns for h in hosts] == ["shoal-demo-h1", "shoal-demo-h2", "shoal-demo-h3"]
    assert len({h.directory for h in hosts}) == 3
    assert all(h.directory.parent == Path("/labs/demo") for h in hosts)
    assert spec().gateway == ipaddress.IPv4Address("198.18.0.1")
    assert spec().registry_address == "198.18.0.11:5000"


@pytest.mark.parametrize("name", ["", "a b", "a/b", "Demo", "1lab", "toolongname1", "lab-", "x;y"])
def test_bad_lab_names_are_refused(name: str) -> None:
    with pytest.raises(LabSpecError, match="invalid lab name"):
        validate_lab_name(name)


def test_link_names_fit_the_kernel_limit_for_the_longest_name() -> None:
    long = LabSpec("abcdefghij", 1, NET("198.18.0.0/24"))
    assert len(long.root_link) <= 15


def test_zero_hosts_and_too_many_hosts_are_refused() -> None:
    with pytest.raises(LabSpecError, match="at least 1"):
        spec(hosts=0)
    with pytest.raises(LabSpecError, match="has room for 4 hosts"):
        spec(hosts=5, underlay="198.18.0.0/28")


def test_underlay_parsing_rejects_garbage_and_host_bits() -> None:
    with pytest.raises(LabSpecError, match="invalid underlay"):
        parse_underlay("300.1.2.0/24")
    with pytest.raises(LabSpecError, match="invalid underlay"):
        parse_underlay("198.18.0.1/24")
    with pytest.raises(LabSpecError, match="too small"):
        parse_underlay("198.18.0.0/30")


def test_underlay_overlapping_a_route_is_refused() -> None:
    with pytest.raises(LabSpecError, match=r"overlaps the route 10\.0\.0\.0/8"):
        check_underlay_free(NET("10.1.0.0/24"), [NET("192.0.2.0/24"), NET("10.0.0.0/8")])
    check_underlay_free(NET("198.18.0.0/24"), [NET("192.0.2.0/24")])


def test_pick_underlay_skips_taken_subnets() -> None:
    assert pick_underlay([], 3) == NET("198.18.0.0/24")
    taken = [NET("198.18.0.0/24"), NET("198.18.1.0/25")]
    assert pick_underlay(taken, 3) == NET("198.18.2.0/24")


def test_namespace_ownership_is_exact_between_labs_sharing_a_prefix() -> None:
    assert netns_belongs_to_lab("shoal-a-h1", "a")
    assert netns_belongs_to_lab("shoal-a-sw", "a")
    assert netns_belongs_to_lab("shoal-a-ct0123456789ab", "a")  # a container's, made by netd
    assert not netns_belongs_to_lab("shoal-a-ct-h1", "a")  # lab "a-ct"'s host
    assert not netns_belongs_to_lab("shoal-a-b-h1", "a")
    assert not netns_belongs_to_lab("shoal-a-h1x", "a")
    assert netns_belongs_to_lab("shoal-a-b-h1", "a-b")


def test_resolve_host_accepts_short_name_index_and_hostname() -> None:
    s = spec()
    assert resolve_host(s, "h2").index == 2
    assert resolve_host(s, "2").index == 2
    assert resolve_host(s, "demo-h2").index == 2
    with pytest.raises(LabSpecError, match="has no host 'h4'"):
        resolve_host(s, "h4")
