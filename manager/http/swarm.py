"""/swarm: init, inspect, update, join tokens (docker-api.md §2)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from api.security import JoinToken, new_token_secret, utcnow
from manager.allocator.apply import with_ingress_address
from manager.allocator.ipam import IPAMError
from manager.allocator.networks import DEFAULT_POOLS, DEFAULT_SUBNET_SIZE, ingress_network
from manager.ca import RootCA, new_root_ca
from manager.http.context import ManagerInfo, context
from manager.http.framework import (
    APIError,
    add_route,
    bad_request,
    json_response,
    query_bool,
    read_json,
    required_version,
)
from manager.http.lookup import new_id
from manager.http.system import PRIVATE_FIELDS, cluster_of
from manager.http.writes import write
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj

NOT_IN_SWARM = "This node is not part of a swarm"
ALREADY_IN_SWARM = (
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and '
    "join another one."
)
SECOND_NS = 1_000_000_000
MIN_CERT_EXPIRY_NS = 3600 * SECOND_NS


def default_swarm_spec() -> dict[str, Any]:
    return {
        "Name": "default",
        "Labels": {},
        "Orchestration": {"TaskHistoryRetentionLimit": 5},
        "Raft": {
            "SnapshotInterval": 10000,
            "LogEntriesForSlowFollowers": 500,
            "ElectionTick": 10,
            "HeartbeatTick": 1,
        },
        "Dispatcher": {"HeartbeatPeriod": 5 * SECOND_NS},
        "CAConfig": {"NodeCertExpiry": 2160 * 3600 * SECOND_NS},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": False},
    }


def merge_spec(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The given SwarmSpec over the defaults; zero values keep the defaults,
    as swarmkit does for durations and counts."""
    merged = copy.deepcopy(base)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_spec(merged[key], value)
        elif value not in (None, 0, "") or key not in merged:
            merged[key] = value
    return merged


def check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    expiry = int((spec.get("CAConfig") or {}).get("NodeCertExpiry") or 0)
    if expiry < MIN_CERT_EXPIRY_NS:
        raise bad_request(
            "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
        )
    if int((spec.get("Dispatcher") or {}).get("HeartbeatPeriod") or 0) < 0:
        raise bad_request(
            "rpc error: code = InvalidArgument desc = heartbeat time period cannot be a "
            "negative duration"
        )
    return spec


def join_token(cluster_digest: str) -> str:
    return str(JoinToken(cluster_digest, new_token_secret()))


def tls_info(ca: RootCA) -> dict[str, str]:
    """ClusterInfo.TLSInfo as Docker shows it: the trust root, and the issuer's
    subject and public key in base64 DER."""
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "TrustRoot": ca.cert_pem.decode(),
        "CertIssuerSubject": base64.b64encode(cert.subject.public_bytes()).decode(),
        "CertIssuerPublicKey": base64.b64encode(spki).decode(),
    }


def require_cluster(tx: ReadTx) -> Obj:
    cluster = cluster_of(tx)
    if cluster is None:
        raise APIError(503, NOT_IN_SWARM)
    return cluster


def public(cluster: Obj, with_tokens: bool) -> Obj:
    shown = {k: v for k, v in cluster.items() if k not in PRIVATE_FIELDS}
    if with_tokens:
        shown["JoinTokens"] = cluster.get("JoinTokens", {})
    return shown


def manager_node(m: ManagerInfo, availability: str = "active") -> Obj:
    return {
        "ID": m.node_id,
        "Spec": {"Labels": {}, "Role": "manager", "Availability": availability},
        "Description": {
            "Hostname": m.hostname,
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": m.ncpu * SECOND_NS, "MemoryBytes": m.memory_bytes},
            "Engine": {"EngineVersion": "20.10.24", "Labels": {}, "Plugins": []},
            "TLSInfo": {},
        },
        "Status": {"State": "ready", "Addr": m.advertise_addr.rsplit(":", 1)[0]},
        "ManagerStatus": {"Reachability": "reachable", "Addr": m.advertise_addr},
        "RaftAddr": m.raft_addr,
    }


async def init(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid swarm init request")
    availability = str(body.get("Availability") or "active")
    if availability not in ("active", "pause", "drain"):
        raise bad_request(f"invalid availability {availability!r}")
    spec = check_spec(merge_spec(default_swarm_spec(), body.get("Spec") or {}))
    spec["Name"] = "default"
    pools = [str(p) for p in body.get("DefaultAddrPool") or DEFAULT_POOLS]
    try:
        subnet_size = int(body.get("SubnetSize") or DEFAULT_SUBNET_SIZE)
    except (TypeError, ValueError):
        raise bad_request(f"invalid subnet size {body.get('SubnetSize')!r}") from None
    try:
        # The routing mesh's network: the pool's first subnet (10.0.0.0/24 by default).
        ingress = ingress_network(new_id(), pools, subnet_size)
    except IPAMError as exc:
        raise bad_request(f"invalid default address pool: {exc}") from None
    ca = new_root_ca(utcnow())
    digest = ca.digest

    def create(tx: WriteTx) -> None:
        if cluster_of(tx) is not None:
            raise APIError(503, ALREADY_IN_SWARM)
        tx.create(
            "cluster",
            {
                "ID": new_id(),
                "Spec": spec,
                "Digest": digest,
                "RootCA": ca.to_store(),
                "TLSInfo": tls_info(ca),
                "RootRotationInProgress": False,
                "DefaultAddrPool": pools,
                "SubnetSize": subnet_size,
                "DataPathPort": body.get("DataPathPort") or 4789,
                "JoinTokens": {"Worker": join_token(digest), "Manager": join_token(digest)},
            },
        )
        if tx.by_name("network", ingress["Name"]) is None:
            tx.create("network", ingress)
        if tx.get("node", ctx.manager.node_id) is None:
            node = manager_node(ctx.manager, availability)
            tx.create("node", with_ingress_address(tx, node))

    await write(ctx.store, create)
    hook = request.app.get(AFTER_INIT)
    if hook is not None:
        await hook()  # the manager takes its certificate and opens its TLS port
    return json_response(ctx.manager.node_id)


async def inspect(request: web.Request) -> web.Response:
    ctx = context(request)
    cluster = ctx.store.view(require_cluster)
    return json_response(public(cluster, with_tokens=True))


async def update(request: web.Request) -> web.Response:
    ctx = context(request)
    version = required_version(request, "swarm")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid swarm spec")
    rotate_worker = query_bool(request, "rotateWorkerToken")
    rotate_manager = query_bool(request, "rotateManagerToken")

    def change(tx: WriteTx) -> None:
        cluster = require_cluster(tx)
        cluster["Version"] = {"Index": version}
        spec = check_spec(merge_spec(default_swarm_spec(), body))
        spec["Name"] = "default"
        cluster["Spec"] = spec
        tokens = dict(cluster.get("JoinTokens") or {})
        if rotate_worker:
            tokens["Worker"] = join_token(cluster["Digest"])
        if rotate_manager:
            tokens["Manager"] = join_token(cluster["Digest"])
        cluster["JoinTokens"] = tokens
        tx.update("cluster", cluster)

    await write(ctx.store, change)
    return web.Response(status=200)


async def unlock_key(request: web.Request) -> web.Response:
    context(request).store.view(require_cluster)
    return json_response({"UnlockKey": ""})


async def unlock(request: web.Request) -> web.Response:
    raise APIError(409, "swarm is not locked")


AfterInit = Callable[[], Awaitable[None]]
AFTER_INIT: web.AppKey[AfterInit] = web.AppKey("after_init")


class SwarmMembership(Protocol):
    async def join_swarm(self, remote: str, token: str) -> None: ...

    async def leave_swarm(self) -> None: ...


MEMBERSHIP_CONTROL: web.AppKey[SwarmMembership] = web.AppKey("swarm_membership")


def _control(request: web.Request) -> SwarmMembership:
    control = request.app.get(MEMBERSHIP_CONTROL)
    if control is None:
        raise APIError(501, "this manager cannot change its membership (its state is in etcd)")
    return control


async def join(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("invalid swarm join request")
    if ctx.store.view(cluster_of) is not None:
        raise APIError(503, ALREADY_IN_SWARM)
    remotes = [str(r) for r in body.get("RemoteAddrs") or []]
    token = str(body.get("JoinToken") or "")
    if not remotes or not token:
        raise bad_request("a join needs RemoteAddrs and a JoinToken")
    errors = []
    for remote in remotes:
        try:
            await _control(request).join_swarm(remote, token)
            return web.Response(status=200)
        except RuntimeError as exc:  # ManagerError: the remote's answer, or unreachable
            errors.append(str(exc))
    raise bad_request(errors[-1])


async def leave(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.store.view(require_cluster)
    if not query_bool(request, "force"):
        raise APIError(
            503,
            "You are attempting to leave the swarm on a node that is participating as a "
            "manager. Removing this node leaves 0 managers out of 1. Without a Raft quorum "
            "your swarm will be inaccessible. The only way to restore a swarm that has lost "
            "consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to "
            "suppress this message.",
        )
    try:
        await _control(request).leave_swarm()
    except RuntimeError as exc:
        raise APIError(503, str(exc)) from None
    return web.Response(status=200)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "POST", "/swarm/init", init)
    add_route(router, "GET", "/swarm", inspect)
    add_route(router, "POST", "/swarm/update", update)
    add_route(router, "GET", "/swarm/unlockkey", unlock_key)
    add_route(router, "POST", "/swarm/unlock", unlock)
    add_route(router, "POST", "/swarm/join", join)
    add_route(router, "POST", "/swarm/leave", leave)
