"""Addresses every party derives the same way."""

from __future__ import annotations

from ipaddress import IPv4Address


def mac_for(address: str) -> str:
    """Docker's MAC for an IPv4 address (with or without its prefix): 02:42 and
    the address's four bytes."""
    packed = IPv4Address(address.split("/", 1)[0]).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)
