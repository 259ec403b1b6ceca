"""Who is calling, and what they may do (DESIGN.md §6).

Over TCP every caller speaks TLS, and the handshake has already checked that a
client certificate, if one was given, chains to the cluster's CA and is valid
now. What a certificate names decides the rest: a worker reaches only its
session with the dispatcher and its certificate renewal; managers and admins
reach everything. A caller without a certificate may only fetch the CA and
exchange a join token for a certificate. The unix socket on the manager's own
host is the local administrator's (mode 0660).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from api.security import der_cert_info
from manager.http.context import context
from manager.http.framework import Handler, error_response
from manager.http.system import cluster_of

FORWARDED_ROLE = "X-Shoal-Forwarded-Role"
FORWARDED_NODE = "X-Shoal-Forwarded-Node"
_VERSION_PREFIX = re.compile(r"^/v[0-9.]+(?=/)")

PUBLIC = frozenset(
    {
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/metrics"),
        ("GET", "/shoal/ca/root"),
        ("POST", "/shoal/ca/issue"),
    }
)
NODE_PREFIXES = ("/shoal/dispatcher/", "/shoal/ca/renew")


@dataclass(frozen=True)
class Identity:
    role: str  # admin | manager | worker | "" (no certificate)
    node_id: str = ""

    @property
    def controls(self) -> bool:
        return self.role in ("admin", "manager")


ANONYMOUS = Identity("")
LOCAL_ADMIN = Identity("admin")
IDENTITY = web.RequestKey("identity", Identity)  # the middleware leaves it on the request
# What a plain-TCP caller (no TLS) is. Managers never listen on plain TCP;
# component tests serve the app that way and say who their client is.
PLAIN_TCP_IDENTITY: web.AppKey[Identity] = web.AppKey("plain_tcp_identity", Identity)


def identify(request: web.Request) -> Identity:
    transport = request.transport
    if transport is None:
        return ANONYMOUS
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        if isinstance(transport.get_extra_info("sockname"), str):
            return LOCAL_ADMIN  # the unix socket
        return request.app.get(PLAIN_TCP_IDENTITY, ANONYMOUS)
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return ANONYMOUS
    info = der_cert_info(der)
    if info.role == "manager" and FORWARDED_ROLE in request.headers:
        # A fellow manager passing a request on to the leader speaks for its caller.
        return Identity(request.headers[FORWARDED_ROLE], request.headers.get(FORWARDED_NODE, ""))
    return Identity(info.role, info.node_id)


def refusal(identity: Identity, method: str, path: str) -> tuple[int, str] | None:
    """(status, message) when this caller may not make this request."""
    path = _VERSION_PREFIX.sub("", path)
    if identity.controls or (method, path) in PUBLIC:
        return None
    if identity.role == "worker":
        if path.startswith(NODE_PREFIXES):
            return None
        return 403, (
            f"node {identity.node_id} is a worker: its certificate does not allow "
            "control requests; use a manager or an admin certificate"
        )
    return 401, (
        "a client certificate signed by this cluster's CA is required "
        "(docker: --tlsverify --tlscert --tlskey --tlscacert)"
    )


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    identity = identify(request)
    refused = refusal(identity, request.method, request.path)
    if refused is None and identity.node_id and identity.role != "admin":
        removed = context(request).store.view(cluster_of) or {}
        if identity.node_id in (removed.get("RemovedNodes") or {}):
            refused = 403, f"node {identity.node_id} was removed from the cluster"
    if refused is not None:
        return error_response(*refused)
    request[IDENTITY] = identity
    return await handler(request)


def caller(request: web.Request) -> Identity:
    identity: Identity = request.get(IDENTITY, ANONYMOUS)
    return identity
