"""The CA's endpoints. Any manager signs (the CA key is in the replicated
store); nothing here writes to the store.

- GET  /shoal/ca/root      the CA certificate (a joiner checks its digest)
- POST /shoal/ca/issue     a join token and a CSR for a node certificate
- POST /shoal/ca/renew     a node's fresh certificate, its role as the store says
- POST /shoal/ca/admin     an admin client certificate (admins and managers only)
- POST /shoal/ca/local     the certificate of this manager's own node, for the
                           agent on the same host (unix socket only)
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from aiohttp import web

from api.security import TokenError, parse_join_token, utcnow
from manager.ca import CSRError, RootCA, sign
from manager.http.context import context
from manager.http.framework import APIError, add_route, bad_request, json_response, read_json
from manager.http.identity import caller
from manager.http.lookup import new_id
from manager.http.swarm import require_cluster
from manager.store.tables import Obj

INVALID_TOKEN = (
    "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"
)


def token_role(cluster: Obj, token: str) -> str | None:
    """The role a join token grants here, or None. An old (rotated) token and
    one from another cluster are simply not ours."""
    tokens = cluster.get("JoinTokens") or {}
    for role, key in (("worker", "Worker"), ("manager", "Manager")):
        expected = str(tokens.get(key) or "")
        if token and expected and hmac.compare_digest(token.encode(), expected.encode()):
            return role
    return None


def _lifetime(cluster: Obj) -> timedelta:
    nanos = int(cluster["Spec"].get("CAConfig", {}).get("NodeCertExpiry") or 0)
    return timedelta(microseconds=nanos // 1000) if nanos else timedelta(hours=2160)


def _sign(cluster: Obj, csr: str, node_id: str, role: str, addresses: tuple[str, ...]) -> Obj:
    ca = RootCA.from_store(cluster["RootCA"])
    try:
        cert = sign(
            ca,
            csr.encode(),
            node_id=node_id,
            role=role,
            cluster_id=str(cluster["ID"]),
            lifetime=_lifetime(cluster),
            now=utcnow(),
            addresses=addresses,
        )
    except CSRError as exc:
        raise bad_request(str(exc)) from None
    return {"NodeID": node_id, "Role": role, "Certificate": cert.decode(), "CACert": ca.cert_pem}


def _body(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict) or not isinstance(body.get("CSR"), str):
        raise bad_request("a certificate request needs a PEM CSR in CSR")
    return str(body["CSR"]), str(body.get("Addr") or "")


def _host(addr: str) -> tuple[str, ...]:
    host = addr.rsplit(":", 1)[0] if addr.count(":") == 1 else addr
    return (host,) if host else ()


def _shown(answer: Obj) -> web.Response:
    answer["CACert"] = answer["CACert"].decode()
    return json_response(answer)


async def root(request: web.Request) -> web.Response:
    cluster = context(request).store.view(require_cluster)
    return json_response({"CACert": cluster["RootCA"]["CACert"]})


async def issue(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json(request)
    csr, addr = _body(body)
    token = str(body.get("JoinToken") or "")
    try:
        parse_join_token(token)
    except TokenError as exc:
        raise bad_request(str(exc)) from None
    cluster = ctx.store.view(require_cluster)
    role = token_role(cluster, token)
    if role is None:
        raise bad_request(INVALID_TOKEN)
    # A joiner may keep the ID it had, unless another node holds it.
    wanted = str(body.get("NodeID") or "")
    taken = bool(wanted) and (
        ctx.store.view(lambda tx: tx.get("node", wanted)) is not None
        or wanted in (cluster.get("RemovedNodes") or {})
    )
    node_id = wanted if wanted and not taken else new_id()
    return _shown(_sign(cluster, csr, node_id, role, _host(addr)))


async def renew(request: web.Request) -> web.Response:
    ctx = context(request)
    identity = caller(request)
    if not identity.node_id:
        raise bad_request("renewal needs the node's current certificate")
    csr, addr = _body(await read_json(request))
    cluster = ctx.store.view(require_cluster)
    node = ctx.store.view(lambda tx: tx.get("node", identity.node_id))
    role = identity.role
    if node is not None:
        role = str((node.get("Spec") or {}).get("Role") or role)
        addr = addr or str((node.get("Status") or {}).get("Addr") or "")
    return _shown(_sign(cluster, csr, identity.node_id, role, _host(addr)))


async def admin(request: web.Request) -> web.Response:
    csr, _ = _body(await read_json(request))
    cluster = context(request).store.view(require_cluster)
    return _shown(_sign(cluster, csr, f"admin-{new_id()[:12]}", "admin", ()))


async def local_node(request: web.Request) -> web.Response:
    ctx = context(request)
    transport = request.transport
    if transport is None or not isinstance(transport.get_extra_info("sockname"), str):
        raise APIError(403, "only the manager's own host (its unix socket) may ask for this")
    csr, _ = _body(await read_json(request))
    cluster = ctx.store.view(require_cluster)
    node = ctx.store.view(lambda tx: tx.get("node", ctx.manager.node_id))
    role = str(((node or {}).get("Spec") or {}).get("Role") or "manager")
    addresses = _host(ctx.manager.advertise_addr)
    return _shown(_sign(cluster, csr, ctx.manager.node_id, role, addresses))


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/shoal/ca/root", root)
    add_route(router, "POST", "/shoal/ca/issue", issue)
    add_route(router, "POST", "/shoal/ca/renew", renew)
    add_route(router, "POST", "/shoal/ca/admin", admin)
    add_route(router, "POST", "/shoal/ca/local", local_node)
