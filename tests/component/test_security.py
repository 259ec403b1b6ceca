"""A real manager (Raft, TLS listener) in this process: the CA, join tokens
pinned by its digest, mutual TLS, who may call what, renewal and rotation."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from api.enroll import Refused, enroll, from_local_manager, renew
from api.security import (
    CertFiles,
    JoinToken,
    client_context,
    new_key_and_csr,
    parse_join_token,
    pem_cert_info,
    pinned_context,
    utcnow,
)
from manager.ca import RootCA, new_root_ca, sign
from manager.daemon import Manager, ManagerConfig
from tests.store.backends import free_port

pytestmark = pytest.mark.timeout(90)


@dataclass
class Running:
    manager: Manager
    address: str
    socket: Path
    admin: CertFiles
    tmp: Path

    async def local(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        connector = aiohttp.UnixConnector(path=str(self.socket))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(method, f"http://manager{path}", **kw) as reply,
        ):
            return reply.status, await reply.json(content_type=None)

    async def tls(
        self, method: str, path: str, context: ssl.SSLContext, **kw: Any
    ) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.request(method, f"https://{self.address}{path}", ssl=context, **kw) as reply,
        ):
            return reply.status, await reply.json(content_type=None)

    def token(self, role: str) -> str:
        cluster = self.manager.store.view(lambda tx: tx.all("cluster"))[0]  # type: ignore[union-attr]
        return str(cluster["JoinTokens"][role])


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    address = f"127.0.0.1:{free_port()}"
    config = ManagerConfig(
        data_dir=tmp_path / "manager",
        advertise_addr=address,
        listen_addr=address,
        raft_addr=f"127.0.0.1:{free_port()}",
    )
    async with Manager(config) as manager:
        components = asyncio.create_task(manager.run())  # the leader's loops, renewal
        run = Running(
            manager,
            address,
            tmp_path / "manager" / "manager.sock",
            CertFiles(tmp_path / "admin"),
            tmp_path,
        )
        # Outside a cluster there is no certificate, so no TCP port at all.
        with pytest.raises(aiohttp.ClientConnectorError):
            await run.tls("GET", "/info", ssl.create_default_context())
        status, _ = await run.local("POST", "/swarm/init", json={"AdvertiseAddr": address})
        assert status == 200
        (await from_local_manager(str(run.socket), "/shoal/ca/admin")).save(run.admin)
        try:
            yield run
        finally:
            components.cancel()
            await asyncio.gather(components, return_exceptions=True)


async def test_an_admin_certificate_reaches_everything_and_the_manager_is_verified(
    running: Running,
) -> None:
    status, nodes = await running.tls("GET", "/nodes", client_context(running.admin))
    assert status == 200 and len(nodes) == 1
    assert pem_cert_info(running.admin.cert.read_bytes()).role == "admin"
    # The CA's key is never shown, the trust root is.
    status, swarm = await running.tls("GET", "/swarm", client_context(running.admin))
    assert "RootCA" not in swarm and "BEGIN CERTIFICATE" in swarm["TLSInfo"]["TrustRoot"]
    status, info = await running.tls("GET", "/info", client_context(running.admin))
    assert "CAKey" not in str(info)


async def test_no_certificate_reaches_only_the_ca(running: Running) -> None:
    anonymous = pinned_context(running.admin.ca.read_bytes())
    status, body = await running.tls("GET", "/nodes", anonymous)
    assert status == 401 and "client certificate" in body["message"]
    status, body = await running.tls("POST", "/services/create", anonymous, json={})
    assert status == 401
    status, body = await running.tls("GET", "/shoal/ca/root", anonymous)
    assert status == 200 and body["CACert"] == running.admin.ca.read_text()


async def test_a_wrong_or_malformed_token_gets_no_certificate(running: Running) -> None:
    anonymous = pinned_context(running.admin.ca.read_bytes())
    _, csr = new_key_and_csr()
    good = parse_join_token(running.token("Worker"))
    wrong = str(JoinToken(good.ca_digest, "0" * 25))
    for token in (wrong, "SWMTKN-1-nonsense", ""):
        status, body = await running.tls(
            "POST", "/shoal/ca/issue", anonymous, json={"JoinToken": token, "CSR": csr.decode()}
        )
        assert status == 400, body
        assert "join token" in body["message"]


async def test_a_token_from_another_cluster_is_refused_before_anything_is_sent(
    running: Running,
) -> None:
    other = new_root_ca(utcnow())
    foreign = str(JoinToken(other.digest, parse_join_token(running.token("Worker")).secret))
    with pytest.raises(Refused, match="does not match the join token's digest"):
        await enroll(running.address, foreign)


async def test_a_worker_certificate_is_refused_on_control_endpoints(running: Running) -> None:
    issued = await enroll(running.address, running.token("Worker"), addr="127.0.0.9")
    assert issued.role == "worker" and pem_cert_info(issued.cert_pem).node_id == issued.node_id
    worker = CertFiles(running.tmp / "worker")
    issued.save(worker)
    context = client_context(worker)
    for method, path in (("GET", "/nodes"), ("GET", "/v1.41/services"), ("POST", "/swarm/leave")):
        status, body = await running.tls(method, path, context)
        assert status == 403, (path, body)
        assert "is a worker" in body["message"]
    # Its own session with the dispatcher is what a worker may do, as itself.
    status, body = await running.tls(
        "POST", "/shoal/dispatcher/register", context, json={"Description": {}, "Addr": "x"}
    )
    assert status == 200 and body["NodeID"] == issued.node_id
    status, body = await running.tls("POST", "/shoal/dispatcher/heartbeat", context, json={})
    assert status == 200 and body["Role"] == "worker"


async def test_a_certificate_from_another_ca_or_expired_is_refused_by_tls(
    running: Running,
) -> None:
    other = new_root_ca(utcnow())
    cluster = running.manager.store.view(lambda tx: tx.all("cluster"))[0]  # type: ignore[union-attr]
    ours = RootCA.from_store(cluster["RootCA"])
    cases = {
        "other-ca": (other, utcnow(), timedelta(hours=1)),
        "expired": (ours, utcnow() - timedelta(hours=3), timedelta(hours=1)),
    }
    for name, (ca, when, lifetime) in cases.items():
        key, csr = new_key_and_csr()
        cert = sign(
            ca, csr, node_id="n" * 25, role="manager", cluster_id="c", lifetime=lifetime, now=when
        )
        files = CertFiles(running.tmp / name)
        files.save(ours.cert_pem, cert, key)
        with pytest.raises(aiohttp.ClientError):
            await running.tls("GET", "/nodes", client_context(files))


async def test_rotating_a_token_stops_the_old_one(running: Running) -> None:
    old = running.token("Worker")
    admin = client_context(running.admin)
    _, swarm = await running.tls("GET", "/swarm", admin)
    status, _ = await running.tls(
        "POST",
        f"/swarm/update?version={swarm['Version']['Index']}&rotateWorkerToken=true",
        admin,
        json=swarm["Spec"],
    )
    assert status == 200
    new = running.token("Worker")
    assert new != old and parse_join_token(new).ca_digest == parse_join_token(old).ca_digest
    with pytest.raises(Refused, match="join token"):
        await enroll(running.address, old)
    assert (await enroll(running.address, new)).role == "worker"


async def test_renewal_follows_promotion_and_demotion(running: Running) -> None:
    issued = await enroll(running.address, running.token("Worker"), addr="127.0.0.9")
    node = CertFiles(running.tmp / "node")
    issued.save(node)
    status, _ = await running.tls(
        "POST", "/shoal/dispatcher/register", client_context(node), json={"Addr": "127.0.0.9"}
    )
    assert status == 200
    admin = client_context(running.admin)

    async def set_role(role: str) -> tuple[int, Any]:
        _, current = await running.tls("GET", f"/nodes/{issued.node_id}", admin)
        spec = dict(current["Spec"], Role=role)
        version = current["Version"]["Index"]
        return await running.tls(
            "POST", f"/nodes/{issued.node_id}/update?version={version}", admin, json=spec
        )

    for role in ("manager", "worker"):
        assert (await set_role(role))[0] == 200
        renewed = await renew(running.address, node)
        info = pem_cert_info(renewed.cert_pem)
        assert (info.node_id, info.role) == (issued.node_id, role)
        renewed.save(node)
    # The only running manager cannot be demoted.
    _, me = await running.tls("GET", f"/nodes/{running.manager.node_id}", admin)
    spec = dict(me["Spec"], Role="worker")
    status, body = await running.tls(
        "POST",
        f"/nodes/{running.manager.node_id}/update?version={me['Version']['Index']}",
        admin,
        json=spec,
    )
    assert status == 400 and "demote the last manager" in body["message"]


async def test_a_removed_node_stays_out(running: Running) -> None:
    issued = await enroll(running.address, running.token("Worker"))
    node = CertFiles(running.tmp / "removed")
    issued.save(node)
    context = client_context(node)
    assert (await running.tls("POST", "/shoal/dispatcher/register", context, json={}))[0] == 200
    admin = client_context(running.admin)
    status, _ = await running.tls("DELETE", f"/nodes/{issued.node_id}?force=true", admin)
    assert status == 200
    status, body = await running.tls("POST", "/shoal/dispatcher/register", context, json={})
    assert status == 403 and "was removed" in body["message"]
    # Joining again makes a new node, never the removed one back.
    again = await enroll(running.address, running.token("Worker"), node_id=issued.node_id)
    assert again.node_id != issued.node_id
