"""Validation and normalisation of the swarm, node, secret, config and network
specs (re-exported by api.validate, which explains the conventions)."""

from __future__ import annotations

import copy
import re

from api.cluster import (
    DEFAULT_DISPATCHER_HEARTBEAT,
    DEFAULT_ELECTION_TICK,
    DEFAULT_HEARTBEAT_TICK,
    DEFAULT_LOG_ENTRIES_FOR_SLOW_FOLLOWERS,
    DEFAULT_NODE_CERT_EXPIRY,
    DEFAULT_SNAPSHOT_INTERVAL,
    DEFAULT_SWARM_NAME,
    DEFAULT_TASK_HISTORY_RETENTION_LIMIT,
    MIN_NODE_CERT_EXPIRY,
    SwarmSpec,
)
from api.errors import Forbidden, InvalidArgument
from api.network import NetworkCreateRequest
from api.node import AVAILABILITIES, ROLES, NodeSpec
from api.secret import ConfigSpec, SecretSpec

PREDEFINED_NETWORKS = ("bridge", "host", "none")
MAX_SECRET_SIZE = 500 * 1024
MAX_CONFIG_SIZE = 1000 * 1024

_OBJECT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def rpc_invalid(desc: str) -> InvalidArgument:
    """A swarmkit validation error as moby relays it to the client."""
    return InvalidArgument(f"rpc error: code = InvalidArgument desc = {desc}")


def normalize_swarm_spec(spec: SwarmSpec) -> SwarmSpec:
    """The spec with every unset field at Docker's default (as `swarm init`
    fills them), or InvalidArgument."""
    spec = copy.deepcopy(spec)
    if spec.name == "":
        spec.name = DEFAULT_SWARM_NAME
    if spec.orchestration.task_history_retention_limit is None:
        spec.orchestration.task_history_retention_limit = DEFAULT_TASK_HISTORY_RETENTION_LIMIT
    raft = spec.raft
    raft.snapshot_interval = raft.snapshot_interval or DEFAULT_SNAPSHOT_INTERVAL
    raft.log_entries_for_slow_followers = (
        raft.log_entries_for_slow_followers or DEFAULT_LOG_ENTRIES_FOR_SLOW_FOLLOWERS
    )
    raft.election_tick = raft.election_tick or DEFAULT_ELECTION_TICK
    raft.heartbeat_tick = raft.heartbeat_tick or DEFAULT_HEARTBEAT_TICK
    dispatcher = spec.dispatcher
    dispatcher.heartbeat_period = dispatcher.heartbeat_period or DEFAULT_DISPATCHER_HEARTBEAT
    ca = spec.ca_config
    ca.node_cert_expiry = ca.node_cert_expiry or DEFAULT_NODE_CERT_EXPIRY
    for external in ca.external_cas:
        if external.protocol.lower() != "cfssl":
            raise InvalidArgument(f'invalid protocol: "{external.protocol}"')
        external.protocol = "cfssl"
    if ca.node_cert_expiry < MIN_NODE_CERT_EXPIRY:
        raise rpc_invalid("minimum certificate expiry time is: 1h0m0s")
    if dispatcher.heartbeat_period < 0:
        raise rpc_invalid("heartbeat time period cannot be a negative duration")
    if spec.orchestration.task_history_retention_limit < 0:
        raise rpc_invalid("task history retention limit cannot be negative")
    return spec


def normalize_node_spec(spec: NodeSpec) -> NodeSpec:
    """Role and Availability checked (moby accepts any case) and lower-cased."""
    spec = copy.deepcopy(spec)
    if spec.role.lower() not in ROLES:
        raise InvalidArgument(f'invalid Role: "{spec.role}"')
    if spec.availability.lower() not in AVAILABILITIES:
        raise InvalidArgument(f'invalid Availability: "{spec.availability}"')
    spec.role = spec.role.lower()
    spec.availability = spec.availability.lower()
    return spec


def _validate_object_name(name: str) -> None:
    if name == "":
        raise rpc_invalid("name must be provided")
    if len(name) > 64 or not _OBJECT_NAME.fullmatch(name):
        raise rpc_invalid(
            "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, "
            "and the start and end character must be [a-zA-Z0-9]"
        )


def validate_secret_spec(spec: SecretSpec) -> SecretSpec:
    _validate_object_name(spec.name)
    if spec.driver is not None:
        if spec.driver.name == "":
            raise rpc_invalid("secret driver must have a name")
        return spec  # the payload lives in the external store
    if not 0 < len(spec.data) < MAX_SECRET_SIZE:
        raise rpc_invalid(
            f"secret data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes"
        )
    return spec


def validate_config_spec(spec: ConfigSpec) -> ConfigSpec:
    _validate_object_name(spec.name)
    if not 0 < len(spec.data) < MAX_CONFIG_SIZE:
        raise rpc_invalid(
            f"config data must be larger than 0 and less than {MAX_CONFIG_SIZE} bytes"
        )
    return spec


def validate_network_create(request: NetworkCreateRequest) -> NetworkCreateRequest:
    if request.name == "":
        raise rpc_invalid("meta: name must be provided")
    if request.name in PREDEFINED_NETWORKS:
        raise Forbidden(f"operation is not permitted on predefined {request.name} network")
    return request
