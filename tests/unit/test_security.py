"""Tokens, the CA digest, certificates' names, renewal timing and the
request policy, without any network."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.security import (
    JoinToken,
    TokenError,
    ca_digest,
    new_key_and_csr,
    new_token_secret,
    parse_join_token,
    pem_cert_info,
    renewal_due,
    utcnow,
)
from manager.ca import CSRError, new_root_ca, sign
from manager.http.identity import ANONYMOUS, LOCAL_ADMIN, Identity, refusal


def test_a_join_token_carries_the_ca_digest_and_a_secret() -> None:
    ca = new_root_ca(utcnow())
    token = str(JoinToken(ca.digest, new_token_secret()))
    assert token.startswith("SWMTKN-1-") and len(token) == len("SWMTKN-1-") + 50 + 1 + 25
    parsed = parse_join_token(token)
    assert parsed.ca_digest == ca_digest(ca.cert_pem)
    assert new_root_ca(utcnow()).digest != ca.digest
    for bad in ("", "SWMTKN-1-abc-def", token.replace("SWMTKN-1", "SWMTKN-2"), token + "x"):
        with pytest.raises(TokenError):
            parse_join_token(bad)


def test_a_signed_certificate_names_node_role_and_cluster() -> None:
    now = utcnow()
    ca = new_root_ca(now)
    _, csr = new_key_and_csr()
    cert = sign(
        ca,
        csr,
        node_id="node1",
        role="worker",
        cluster_id="cluster1",
        lifetime=timedelta(hours=1),
        now=now,
    )
    info = pem_cert_info(cert)
    assert (info.node_id, info.role, info.cluster_id) == ("node1", "worker", "cluster1")
    assert not info.expired(now) and info.expired(now + timedelta(hours=2))
    with pytest.raises(CSRError):
        sign(
            ca,
            b"not a csr",
            node_id="n",
            role="worker",
            cluster_id="c",
            lifetime=timedelta(hours=1),
            now=now,
        )


def test_renewal_is_due_after_60_percent_or_on_a_role_change() -> None:
    now = utcnow()
    ca = new_root_ca(now)
    _, csr = new_key_and_csr()
    cert = sign(
        ca, csr, node_id="n", role="worker", cluster_id="c", lifetime=timedelta(hours=10), now=now
    )
    info = pem_cert_info(cert)
    assert not renewal_due(info, now + timedelta(hours=5))
    assert renewal_due(info, now + timedelta(hours=6, minutes=5))
    assert renewal_due(info, now, wanted_role="manager")
    assert not renewal_due(info, now, wanted_role="worker")


@pytest.mark.parametrize(
    ("identity", "method", "path", "status"),
    [
        (ANONYMOUS, "GET", "/nodes", 401),
        (ANONYMOUS, "GET", "/_ping", None),
        (ANONYMOUS, "POST", "/v1.41/shoal/ca/issue", None),
        (ANONYMOUS, "POST", "/shoal/dispatcher/heartbeat", 401),
        (Identity("worker", "w"), "GET", "/nodes", 403),
        (Identity("worker", "w"), "POST", "/shoal/managers/join", 403),
        (Identity("worker", "w"), "POST", "/shoal/ca/admin", 403),
        (Identity("worker", "w"), "POST", "/shoal/dispatcher/status", None),
        (Identity("worker", "w"), "POST", "/shoal/ca/renew", None),
        (Identity("manager", "m"), "POST", "/services/create", None),
        (Identity("admin", "a"), "DELETE", "/nodes/x", None),
        (LOCAL_ADMIN, "POST", "/swarm/init", None),
    ],
)
def test_who_may_call_what(identity: Identity, method: str, path: str, status: int | None) -> None:
    refused = refusal(identity, method, path)
    assert (refused[0] if refused else None) == status
