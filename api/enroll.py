"""A node's first certificate, for its join token (DESIGN.md §6).

1. Fetch the CA certificate from the manager without trusting it yet, and
   check its digest against the one the token carries: a manager of another
   cluster, or anyone in the middle, is refused before anything is sent.
2. Over TLS that trusts only that CA, send the token and a CSR; the CA
   answers with a certificate naming the node ID and the role the token grants.

The private key never leaves the node. Renewal and the admin certificate use
the same request with other credentials.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from api.security import (
    CertFiles,
    ca_digest,
    new_key_and_csr,
    parse_join_token,
    pinned_context,
    unverified_context,
)

TIMEOUT = aiohttp.ClientTimeout(total=15)


class EnrollError(RuntimeError):
    """The node could not get a certificate; the message says why."""


class Refused(EnrollError):
    """A manager answered, and said no (a wrong token): trying others won't help."""


@dataclass(frozen=True)
class Issued:
    node_id: str
    role: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def save(self, files: CertFiles) -> None:
        files.save(self.ca_pem, self.cert_pem, self.key_pem)


async def _call(
    method: str, url: str, context: ssl.SSLContext, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.request(method, url, json=body, ssl=context) as reply,
        ):
            answer = await reply.json(content_type=None)
            if reply.status != 200:
                message = (answer or {}).get("message") if isinstance(answer, dict) else answer
                raise Refused(f"{url}: {message or reply.status}")
            if not isinstance(answer, dict):
                raise EnrollError(f"{url}: unexpected answer")
            return answer
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise EnrollError(f"cannot reach {url}: {exc or type(exc).__name__}") from None


async def fetch_pinned_ca(manager: str, token: str) -> bytes:
    digest = parse_join_token(token).ca_digest
    answer = await _call("GET", f"https://{manager}/shoal/ca/root", unverified_context())
    ca_pem = str(answer.get("CACert") or "").encode()
    try:
        actual = ca_digest(ca_pem)
    except ValueError:
        raise Refused(f"the manager at {manager} sent no CA certificate") from None
    if actual != digest:
        raise Refused(
            f"the CA at {manager} does not match the join token's digest: "
            "the token is for another cluster, or someone is in the way"
        )
    return ca_pem


def _issued(answer: dict[str, Any], ca_pem: bytes, key_pem: bytes) -> Issued:
    return Issued(
        node_id=str(answer["NodeID"]),
        role=str(answer["Role"]),
        ca_pem=ca_pem,
        cert_pem=str(answer["Certificate"]).encode(),
        key_pem=key_pem,
    )


async def enroll(manager: str, token: str, node_id: str = "", addr: str = "") -> Issued:
    """A certificate for a join token, from one manager."""
    ca_pem = await fetch_pinned_ca(manager, token)
    key_pem, csr_pem = new_key_and_csr()
    body = {"JoinToken": token, "CSR": csr_pem.decode(), "NodeID": node_id, "Addr": addr}
    answer = await _call("POST", f"https://{manager}/shoal/ca/issue", pinned_context(ca_pem), body)
    return _issued(answer, ca_pem, key_pem)


async def enroll_any(managers: list[str], token: str, node_id: str = "", addr: str = "") -> Issued:
    """Try each manager in turn until one answers; a refusal ends the attempt."""
    errors = []
    for manager in managers:
        try:
            return await enroll(manager, token, node_id, addr)
        except Refused:
            raise
        except EnrollError as exc:
            errors.append(str(exc))
    raise EnrollError("; ".join(errors) or "no managers to join")


async def renew(manager: str, files: CertFiles, addr: str = "") -> Issued:
    """A fresh certificate for the node the current one names (its role as the
    cluster now says), presenting the current one."""
    key_pem, csr_pem = new_key_and_csr()
    body = {"CSR": csr_pem.decode(), "Addr": addr}
    ca_pem = files.ca.read_bytes()
    context = pinned_context(ca_pem)
    context.load_cert_chain(str(files.cert), str(files.key))
    answer = await _call("POST", f"https://{manager}/shoal/ca/renew", context, body)
    return _issued(answer, ca_pem, key_pem)


async def from_local_manager(socket_path: str, path: str) -> Issued:
    """A certificate through a manager's unix socket on this host: the node's
    own (path /shoal/ca/local, for the agent beside a manager) or an admin's
    (/shoal/ca/admin)."""
    key_pem, csr_pem = new_key_and_csr()
    connector = aiohttp.UnixConnector(path=socket_path)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session,
            session.post(f"http://manager{path}", json={"CSR": csr_pem.decode()}) as reply,
        ):
            answer = await reply.json(content_type=None)
            if reply.status != 200:
                raise Refused(f"{socket_path}: {(answer or {}).get('message') or reply.status}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise EnrollError(f"cannot reach the manager at {socket_path}: {exc}") from None
    return _issued(answer, str(answer["CACert"]).encode(), key_pem)
