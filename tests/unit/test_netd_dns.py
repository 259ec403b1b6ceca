"""netd's embedded DNS: what each container is told, and the UDP server's
local answers, forwarding and SERVFAIL when the upstream is gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import cast

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from netd.dns import DnsServer, ServiceRecord, TaskRecord, View, answer, host_resolvers

pytestmark = pytest.mark.timeout(15)

ON_A = "172.18.0.5"  # a container attached to net-a
ON_B = "172.18.0.6"  # a container attached to net-b


def cluster(clients: dict[str, frozenset[str]] | None = None) -> View:
    web = ServiceRecord(
        name="web",
        mode="vip",
        vips={"net-a": "10.0.1.2"},
        tasks=[
            TaskRecord(["web.1.aaa", "web.1"], {"net-a": "10.0.1.3"}, live=True),
            TaskRecord(["web.1.old", "web.1"], {"net-a": "10.0.1.9"}, live=False),
            TaskRecord(["web.2.bbb", "web.2"], {"net-a": "10.0.1.4"}, live=True),
        ],
    )
    db = ServiceRecord(
        name="db",
        mode="dnsrr",
        tasks=[
            TaskRecord(["db.1.ccc", "db.1"], {"net-b": "10.0.2.3"}, live=True),
            TaskRecord(["db.2.ddd", "db.2"], {"net-b": "10.0.2.4"}, live=True),
            TaskRecord(["db.3.eee", "db.3"], {"net-b": "10.0.2.5"}, live=False),
        ],
    )
    if clients is None:
        clients = {ON_A: frozenset({"net-a"}), ON_B: frozenset({"net-b"})}
    return View(clients=clients, services=[web, db])


def ask(name: str, client: str, qtype: str = "A", view: View | None = None) -> DNSRecord:
    reply = answer(DNSRecord.question(name, qtype).pack(), client, view or cluster())
    assert reply is not None, f"{name} was forwarded"
    return DNSRecord.parse(reply)


def addresses(reply: DNSRecord) -> set[str]:
    assert reply.header.rcode == RCODE.NOERROR
    assert all(rr.rtype == QTYPE.A and rr.ttl == 5 for rr in reply.rr)
    return {str(rr.rdata) for rr in reply.rr}


def test_vip_service_resolves_to_its_vip() -> None:
    assert addresses(ask("web", ON_A)) == {"10.0.1.2"}
    # Case and the trailing dot do not matter.
    assert addresses(ask("WEB.", ON_A)) == {"10.0.1.2"}


def test_dnsrr_service_resolves_to_its_live_tasks() -> None:
    assert addresses(ask("db", ON_B)) == {"10.0.2.3", "10.0.2.4"}


def test_tasks_name_gives_live_tasks_only() -> None:
    assert addresses(ask("tasks.web", ON_A)) == {"10.0.1.3", "10.0.1.4"}
    assert addresses(ask("Tasks.DB", ON_B)) == {"10.0.2.3", "10.0.2.4"}


def test_task_names_resolve_to_the_task() -> None:
    assert addresses(ask("web.1.aaa", ON_A)) == {"10.0.1.3"}
    # The slot name is the old dead task's too: only the live one answers.
    assert addresses(ask("web.1", ON_A)) == {"10.0.1.3"}


def test_non_live_task_is_nxdomain() -> None:
    assert ask("web.1.old", ON_A).header.rcode == RCODE.NXDOMAIN
    assert ask("db.3", ON_B).header.rcode == RCODE.NXDOMAIN


def test_service_on_another_network_is_nxdomain() -> None:
    assert ask("db", ON_A).header.rcode == RCODE.NXDOMAIN
    assert ask("tasks.db", ON_A).header.rcode == RCODE.NXDOMAIN
    assert ask("web.2.bbb", ON_B).header.rcode == RCODE.NXDOMAIN


def test_unknown_client_is_refused() -> None:
    assert ask("web", "172.18.0.99").header.rcode == RCODE.REFUSED
    # Not an open resolver either.
    assert ask("example.com", "172.18.0.99").header.rcode == RCODE.REFUSED


def test_aaaa_and_other_types_for_known_names_are_empty_noerror() -> None:
    for qtype in ("AAAA", "MX", "TXT"):
        reply = ask("web", ON_A, qtype)
        assert reply.header.rcode == RCODE.NOERROR
        assert reply.rr == []


def test_unknown_name_is_forwarded() -> None:
    query = DNSRecord.question("example.com").pack()
    assert answer(query, ON_A, cluster()) is None
    assert answer(DNSRecord.question("tasks.nothing").pack(), ON_A, cluster()) is None


def test_reply_keeps_the_query_id_and_question() -> None:
    query = DNSRecord.question("web")
    reply = DNSRecord.parse(answer(query.pack(), ON_A, cluster()) or b"")
    assert reply.header.id == query.header.id
    assert reply.header.qr == 1
    assert str(reply.q.qname) == "web."


def test_host_resolvers_reads_nameservers(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# generated\nsearch example.org\nnameserver 127.0.0.53\n"
        "nameserver 192.0.2.1\n; nameserver 192.0.2.9\nnameserver 2001:db8::1\n"
    )
    assert host_resolvers(str(conf)) == ["127.0.0.53:53", "192.0.2.1:53", "[2001:db8::1]:53"]
    assert host_resolvers(str(tmp_path / "missing")) == []


class FakeUpstream(asyncio.DatagramProtocol):
    """A resolver that answers every A query with 192.0.2.10."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's UDP transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        query = DNSRecord.parse(data)
        reply = query.reply()
        reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("192.0.2.10"), ttl=30))
        self.transport.sendto(reply.pack(), addr)


class Silent(asyncio.DatagramProtocol):
    """A resolver that receives and never answers."""


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.replies.put_nowait(data)


async def query_server(port: int, name: str) -> DNSRecord:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    try:
        query = DNSRecord.question(name)
        transport.sendto(query.pack())
        async with asyncio.timeout(5):
            reply = DNSRecord.parse(await client.replies.get())
        assert reply.header.id == query.header.id
        return reply
    finally:
        transport.close()


async def udp_endpoint(
    factory: type[asyncio.DatagramProtocol],
) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))
    return transport, int(transport.get_extra_info("sockname")[1])


async def test_server_answers_forwards_and_servfails() -> None:
    upstream, upstream_port = await udp_endpoint(FakeUpstream)
    view = cluster({"127.0.0.1": frozenset({"net-a"})})
    server = DnsServer("127.0.0.1", 0, lambda: view, [f"127.0.0.1:{upstream_port}"])
    await server.start()
    try:
        assert server.port != 0

        local = await query_server(server.port, "web")
        assert addresses(local) == {"10.0.1.2"}

        forwarded = await query_server(server.port, "example.com")
        assert forwarded.header.rcode == RCODE.NOERROR
        assert [str(rr.rdata) for rr in forwarded.rr] == ["192.0.2.10"]

        missing = await query_server(server.port, "db")
        assert missing.header.rcode == RCODE.NXDOMAIN

        upstream.close()  # the upstream is gone: its port now refuses
        started = time.monotonic()
        failed = await query_server(server.port, "example.org")
        assert failed.header.rcode == RCODE.SERVFAIL
        assert time.monotonic() - started < 3

        assert (server.queries, server.forwarded, server.nxdomain) == (4, 2, 1)
    finally:
        await server.close()
        upstream.close()


async def test_silent_upstream_gives_servfail_after_the_timeout() -> None:
    silent, silent_port = await udp_endpoint(Silent)
    view = cluster({"127.0.0.1": frozenset({"net-a"})})
    server = DnsServer("127.0.0.1", 0, lambda: view, [f"127.0.0.1:{silent_port}"])
    await server.start()
    try:
        started = time.monotonic()
        failed = await query_server(server.port, "example.com")
        elapsed = time.monotonic() - started
        assert failed.header.rcode == RCODE.SERVFAIL
        assert 1.5 < elapsed < 3
    finally:
        await server.close()
        silent.close()


async def test_no_upstream_gives_servfail() -> None:
    view = cluster({"127.0.0.1": frozenset({"net-a"})})
    server = DnsServer("127.0.0.1", 0, lambda: view, [])
    await server.start()
    try:
        failed = await query_server(server.port, "example.com")
        assert failed.header.rcode == RCODE.SERVFAIL
    finally:
        await server.close()
