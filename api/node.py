"""Nodes: the spec an operator edits and what the node and managers report."""

from __future__ import annotations

import msgspec

from api.base import Annotations, Meta, Obj, Platform, Resources, TLSInfo, always_new

ROLES = ("worker", "manager")
AVAILABILITIES = ("active", "pause", "drain")
NODE_STATES = ("unknown", "down", "ready", "disconnected")
REACHABILITIES = ("unknown", "unreachable", "reachable")


class NodeSpec(Annotations):
    role: str = ""
    availability: str = ""


class PluginDescription(Obj):
    type: str = ""
    name: str = ""


class EngineDescription(Obj):
    engine_version: str = ""
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    plugins: list[PluginDescription] = msgspec.field(default_factory=list)


class NodeDescription(Obj):
    hostname: str = ""
    platform: Platform = always_new(Platform)
    resources: Resources = always_new(Resources)
    engine: EngineDescription = always_new(EngineDescription)
    tls_info: TLSInfo = always_new(TLSInfo, name="TLSInfo")


class NodeStatus(Obj):
    state: str = ""
    message: str = ""
    addr: str = ""


class ManagerStatus(Obj):
    """Present on managers only. Addr is the Raft address, "ip:2377"."""

    leader: bool = False
    reachability: str = ""
    addr: str = ""


class Node(Meta):
    spec: NodeSpec = always_new(NodeSpec)
    description: NodeDescription = always_new(NodeDescription)
    status: NodeStatus = always_new(NodeStatus)
    manager_status: ManagerStatus | None = None
