"""netd's embedded DNS server: what a container on an overlay network asks for
names, as Docker's embedded DNS answers it.

A container's queries arrive from its address on the node-local gateway
bridge; that address says which overlay networks it is on, and it is shown
only the services and tasks on those networks. Names that are not the
cluster's are forwarded to the host's resolvers.

`answer` decides with no I/O; `DnsServer` is the thin UDP server around it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSHeader, DNSRecord

# Docker answers with 600 s; we answer with 5 s because tasks come and go
# (rescheduled, scaled, updated) and a container must not keep resolving a
# task that is gone, or miss a new one, for ten minutes.
TTL = 5
# How long an upstream resolver has to answer before the asker gets SERVFAIL:
# well within a stub resolver's own 5 s timeout, so it sees our answer.
FORWARD_TIMEOUT = 2.0
# In-flight queries (mostly forwards waiting on upstreams) beyond which new
# ones are dropped: a flood must not grow tasks without bound, and a dropped
# UDP query is one the client retries.
MAX_IN_FLIGHT = 256
TASKS_PREFIX = "tasks."


@dataclass(frozen=True)
class TaskRecord:
    names: list[str]  # e.g. ["web.1.<task id>", "web.1"]
    addresses: dict[str, str]  # overlay network ID -> the task's IP on it
    live: bool


@dataclass(frozen=True)
class ServiceRecord:
    name: str
    mode: str  # "vip" | "dnsrr"
    vips: dict[str, str] = field(default_factory=dict)  # network ID -> VIP
    tasks: list[TaskRecord] = field(default_factory=list)


@dataclass(frozen=True)
class View:
    # A container's address on the gateway bridge -> its overlay networks' IDs.
    clients: dict[str, frozenset[str]] = field(default_factory=dict)
    services: list[ServiceRecord] = field(default_factory=list)


def _normal(name: str) -> str:
    return name.rstrip(".").lower()


def _task_ips(task: TaskRecord, networks: frozenset[str]) -> list[str]:
    return [ip for network, ip in task.addresses.items() if network in networks]


def resolve(name: str, networks: frozenset[str], view: View) -> list[str] | None:
    """The IPv4 addresses `name` has for a container on `networks`; [] if the
    name is the cluster's but not one that container may see (another
    network's service, a task that is not running); None if the cluster
    does not know the name at all (it is for the upstream resolvers)."""
    name = _normal(name)
    known = False
    ips: list[str] = []
    for service in view.services:
        service_name = _normal(service.name)
        if name == service_name:
            known = True
            if service.mode == "dnsrr":
                ips += [ip for t in service.tasks if t.live for ip in _task_ips(t, networks)]
            else:
                ips += [ip for network, ip in service.vips.items() if network in networks]
        elif name == TASKS_PREFIX + service_name:
            known = True
            ips += [ip for t in service.tasks if t.live for ip in _task_ips(t, networks)]
        # A slot name ("web.1") is shared by the slot's dead tasks and its live
        # one, so every task is looked at and only the live ones give addresses.
        for task in service.tasks:
            if any(_normal(n) == name for n in task.names):
                known = True
                if task.live:
                    ips += _task_ips(task, networks)
    if not known:
        return None
    return list(dict.fromkeys(ips))


def _rcode_reply(query: DNSRecord, rcode: int) -> bytes:
    reply = query.reply()
    reply.header.rcode = rcode
    return bytes(reply.pack())


def answer(query: bytes, client_ip: str, view: View) -> bytes | None:
    """The reply to `query` from the container at `client_ip`, or None when
    the name is not the cluster's and the query should go upstream.

    Raises dnslib.DNSError when `query` is not a DNS query at all: there is
    nothing sensible to reply to, so the server drops it."""
    record = DNSRecord.parse(query)
    if record.header.qr:
        raise DNSError("a response, not a query")
    networks = view.clients.get(client_ip)
    if networks is None:
        # Only this node's containers may ask: anyone else reaching the
        # gateway address must not get an open resolver or the cluster's names.
        return _rcode_reply(record, RCODE.REFUSED)
    if record.header.opcode != 0:  # only QUERY; not NOTIFY, UPDATE, ...
        return _rcode_reply(record, RCODE.NOTIMP)
    if not record.questions:
        reply = DNSRecord(DNSHeader(id=record.header.id, qr=1, ra=1, rcode=RCODE.FORMERR))
        return bytes(reply.pack())
    question = record.questions[0]
    qname = str(question.qname)
    ips = resolve(qname, networks, view)
    if ips is None:
        return None
    if not ips:
        return _rcode_reply(record, RCODE.NXDOMAIN)
    reply = record.reply()
    # Other types (AAAA above all: overlays have no IPv6) get an empty
    # NOERROR, which tells a resolver the name exists, so it uses the A answer.
    if question.qtype == QTYPE.A:
        # Start at a different address for each query ID, so that dnsrr and
        # tasks.<service> spread clients over the tasks while staying pure.
        start = record.header.id % len(ips)
        for ip in ips[start:] + ips[:start]:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
    return bytes(reply.pack())


def servfail(query: bytes) -> bytes | None:
    """SERVFAIL for a query that parsed before (None if it somehow does not)."""
    try:
        return _rcode_reply(DNSRecord.parse(query), RCODE.SERVFAIL)
    except DNSError:
        return None


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    """The host's nameservers as "ip:port" ("[ip]:port" for IPv6).

    127.x nameservers (systemd-resolved's stub, a local dnsmasq) are kept:
    netd forwards from the host's network namespace, where they are reachable,
    not from the container's."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    upstreams = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            ip = words[1]
            upstreams.append(f"[{ip}]:53" if ":" in ip else f"{ip}:53")
    return upstreams


def _split_address(upstream: str) -> tuple[str, int]:
    host, _, port = upstream.rpartition(":")
    return host.strip("[]"), int(port)


class _Upstream(asyncio.DatagramProtocol):
    """One forwarded query: a connected UDP socket, so only the upstream's
    replies reach us, and only one with our query's ID is taken."""

    def __init__(self, query_id: bytes) -> None:
        self.query_id = query_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if data[:2] == self.query_id and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: this upstream is down.
        if not self.reply.done():
            self.reply.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc or ConnectionError("upstream socket closed"))


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.server._received(data, str(addr[0]), addr)


class DnsServer:
    """Answers containers' queries on `address`:`port` (UDP) from the View that
    `view()` returns at each query, and forwards what is not the cluster's."""

    def __init__(
        self, address: str, port: int, view: Callable[[], View], upstreams: list[str]
    ) -> None:
        self.address = address
        self.port = port  # 0 picks a free port; start() sets the one bound
        self.view = view
        self.upstreams = list(upstreams)
        # Counters the daemon exports as metrics.
        self.queries = 0  # every query handled, answered here or forwarded
        self.forwarded = 0  # sent to the upstream resolvers
        self.nxdomain = 0  # answered here with NXDOMAIN
        self._transport: asyncio.DatagramTransport | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Listener(self), local_addr=(self.address, self.port)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _received(self, data: bytes, client_ip: str, addr: tuple[str | object, ...]) -> None:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            return
        task = asyncio.create_task(self._handle(data, client_ip, addr))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, data: bytes, client_ip: str, addr: tuple[str | object, ...]) -> None:
        try:
            reply = answer(data, client_ip, self.view())
        except DNSError:
            return  # not a DNS query: nothing to reply to
        self.queries += 1
        if reply is None:
            self.forwarded += 1
            reply = await self._forward(data) or servfail(data)
        elif len(reply) > 3 and reply[3] & 0x0F == RCODE.NXDOMAIN:
            self.nxdomain += 1
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    async def _forward(self, query: bytes) -> bytes | None:
        """The first upstream's reply within FORWARD_TIMEOUT, or None.

        Upstreams are tried in order; one that refuses (ICMP unreachable)
        passes to the next at once, one that stays silent uses up the time."""
        deadline = time.monotonic() + FORWARD_TIMEOUT
        loop = asyncio.get_running_loop()
        for upstream in self.upstreams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            transport: asyncio.DatagramTransport | None = None
            try:
                host, port = _split_address(upstream)
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: _Upstream(query[:2]), remote_addr=(host, port)
                )
                transport.sendto(query)
                return await asyncio.wait_for(protocol.reply, remaining)
            except TimeoutError:
                break
            except (OSError, ValueError):
                continue  # down or misconfigured: the next upstream may answer
            finally:
                if transport is not None:
                    transport.close()
        return None
