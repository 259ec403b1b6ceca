"""shoal-netd: one per node. It follows the cluster's network state (a long
poll to the dispatcher, with the node's certificate), attaches and detaches
containers when the agent asks (unix socket), keeps the kernel in line with
`netd.plan`, serves DNS to the containers and exports /metrics.

    async with Netd(config) as netd: await netd.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from api.security import CertFiles, client_context
from api.serving import metrics_app, serve_tcp, serve_unix
from netd import kernel
from netd.api import make_api
from netd.dns import DnsServer, View, host_resolvers
from netd.dns_view import dns_view
from netd.metrics import NetdMetrics
from netd.model import (
    Attachment,
    Link,
    Snapshot,
    load_attachments,
    parse_snapshot,
    save_attachments,
)
from netd.plan import NodePlan, plan_node

log = logging.getLogger("shoal.netd")
POLL_TIMEOUT = aiohttp.ClientTimeout(total=30)


class AttachError(RuntimeError):
    """The container cannot be attached as asked; the message says why."""


@dataclass(frozen=True)
class NetdConfig:
    data_dir: Path
    managers: tuple[str, ...]
    cert_dir: Path  # the node's certificate (the agent's, on this host)
    node_addr: str  # this node's underlay address: the VXLAN endpoint
    socket_path: Path
    metrics_addr: str = ""
    netns_prefix: str = "shoal-ct"
    gateway_subnet: str = "172.18.0.0/16"

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.IPv4Network(self.gateway_subnet).hosts()))


class Netd:
    def __init__(self, config: NetdConfig) -> None:
        self.config = config
        self.state_file = config.data_dir / "attachments.json"
        self.attachments: dict[str, Attachment] = {}
        self.snapshot = Snapshot(index=0)
        self.node_id = ""
        self.changed = asyncio.Event()
        self.seen = asyncio.Event()  # a snapshot arrived since the last attach asked
        self.lock = asyncio.Lock()  # one writer of the kernel at a time
        self.metrics = NetdMetrics(self)
        self._applied: dict[str, object] = {}  # what the kernel was last given, per object
        self._received_at = time.monotonic()
        self._runners: list[web.AppRunner] = []
        self.dns: DnsServer | None = None

    async def __aenter__(self) -> Netd:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        (cfg.data_dir / "resolv").mkdir(exist_ok=True)
        self.attachments = load_attachments(self.state_file)
        prefixlen = ipaddress.IPv4Network(cfg.gateway_subnet).prefixlen
        await kernel.ensure_gateway_bridge(f"{cfg.gateway}/{prefixlen}")
        await self._start_dns()
        api = make_api(self)
        self._runners.append(await serve_unix(api, cfg.socket_path))
        if cfg.metrics_addr:
            self._runners.append(
                await serve_tcp(metrics_app(self.metrics.registry), cfg.metrics_addr)
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self.dns is not None:
            await self.dns.close()

    async def _start_dns(self) -> None:
        def view() -> View:
            return dns_view(self.snapshot, self.attachments)

        self.dns = DnsServer(self.config.gateway, 53, view, host_resolvers())
        await self.dns.start()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow_cluster())
            group.create_task(self._reconcile_loop())
            group.create_task(self.metrics.sample_loop())

    # The cluster's state, from whichever manager answers.
    async def _follow_cluster(self) -> None:
        files = CertFiles(self.config.cert_dir)
        # The agent joins first, then netd shares its identity: wait for the files.
        while not files.complete():  # noqa: ASYNC110 (a file, not an event of ours)
            await asyncio.sleep(0.5)
        self.node_id = files.info().node_id
        tls = client_context(files)
        managers = list(self.config.managers)
        async with aiohttp.ClientSession(timeout=POLL_TIMEOUT) as session:
            while True:
                manager = managers[0]
                url = f"https://{manager}/shoal/dispatcher/networks"
                try:
                    params = {"index": str(self.snapshot.index)}
                    async with session.get(url, params=params, ssl=tls) as reply:
                        if reply.status != 200:
                            raise aiohttp.ClientError(f"{reply.status}: {await reply.text()}")
                        data = await reply.json(content_type=None)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.info("network state from %s: %s", manager, exc)
                    managers.append(managers.pop(0))
                    await asyncio.sleep(0.3)
                    continue
                snapshot = parse_snapshot(data)
                if snapshot != self.snapshot:
                    self.snapshot = snapshot
                    self._received_at = time.monotonic()
                    self.changed.set()
                self.seen.set()

    async def _reconcile_loop(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            await asyncio.sleep(0.02)  # let a burst of changes gather
            try:
                async with self.lock:
                    await self._apply(self._plan())
                self.metrics.programmed(time.monotonic() - self._received_at)
            except kernel.KernelError as exc:
                log.warning("programming the kernel failed, will retry: %s", exc)
                await asyncio.sleep(1.0)
                self.changed.set()

    def _plan(self) -> NodePlan:
        return plan_node(self.snapshot, self.node_id, self.attachments, self.config.gateway_subnet)

    async def _apply(self, plan: NodePlan) -> None:
        for network_id, network in plan.networks.items():
            key = f"net:{network_id}"
            wanted = (network, plan.bridge_address.get(network_id))
            if self._applied.get(key) != wanted:
                await kernel.ensure_network(network, self.config.node_addr, wanted[1])
                self._applied[key] = wanted
        for network_id, peers in plan.peers.items():
            if self._applied.get(f"peers:{network_id}") != peers:
                await kernel.sync_peers(network_id, peers)
                self._applied[f"peers:{network_id}"] = peers
        if self.snapshot.index:  # never tear down before the first state arrived
            wanted_prefixes = {n[:10] for n in plan.networks}
            for prefix in await kernel.present_networks() - wanted_prefixes:
                await kernel.remove_network(prefix)
                for kind in ("net", "peers"):
                    for key in [k for k in self._applied if k.startswith(f"{kind}:{prefix}")]:
                        self._applied.pop(key)
        failed = []
        for task_id, ruleset in plan.container_rules.items():
            attachment = self.attachments.get(task_id)
            if attachment is not None and self._applied.get(f"lb:{task_id}") != ruleset:
                try:
                    await kernel.apply_rules(ruleset, attachment.netns)
                except kernel.KernelError as exc:  # one container (going away?) holds up no other
                    failed.append(str(exc))
                    continue
                self._applied[f"lb:{task_id}"] = ruleset
        if self._applied.get("host") != plan.host_rules:
            await kernel.apply_rules(plan.host_rules)
            self._applied["host"] = plan.host_rules
        if failed:
            raise kernel.KernelError("; ".join(failed))

    # What the agent asks for.
    async def attach(self, task_id: str, wanted: list[dict[str, str]]) -> Attachment:
        existing = self.attachments.get(task_id)
        if existing is not None:
            return existing
        networks = [str(w["NetworkID"]) for w in wanted]
        await self._wait_for_networks(networks)
        links = tuple(
            Link(str(w["NetworkID"]), f"sv{task_id[:10]}{i}", str(w["Address"]), str(w["MAC"]))
            for i, w in enumerate(wanted)
        )
        async with self.lock:
            attachment = Attachment(
                task_id=task_id,
                netns=f"{self.config.netns_prefix}{task_id[:12]}",
                gateway_veth=f"sg{task_id[:11]}",
                gateway_ip=self._free_gateway_ip(),
                links=links,
            )
            self.attachments[task_id] = attachment
            plan = self._plan()
            try:
                for link in links:
                    network = plan.networks[link.network_id]
                    address = plan.bridge_address.get(link.network_id)
                    if self._applied.get(f"net:{link.network_id}") != (network, address):
                        await kernel.ensure_network(network, self.config.node_addr, address)
                        self._applied[f"net:{link.network_id}"] = (network, address)
                prefixlen = ipaddress.IPv4Network(self.config.gateway_subnet).prefixlen
                await kernel.attach(attachment, self.config.gateway, prefixlen)
            except kernel.KernelError as exc:
                self.attachments.pop(task_id)
                await kernel.detach(attachment)
                raise AttachError(f"attaching {task_id}: {exc}") from None
            # Recorded once whole: a netd killed half way starts this one over.
            save_attachments(self.state_file, self.attachments)
            await self._apply(plan)
        self.changed.set()
        return attachment

    async def _wait_for_networks(self, networks: list[str]) -> None:
        deadline = time.monotonic() + 10.0
        while not all(n in self.snapshot.networks for n in networks):
            if time.monotonic() > deadline:
                missing = [n for n in networks if n not in self.snapshot.networks]
                raise AttachError(f"unknown network(s) {', '.join(missing)}")
            self.seen.clear()
            with contextlib.suppress(TimeoutError):  # not wait_for: 3.11's can swallow a cancel
                async with asyncio.timeout(1.0):
                    await self.seen.wait()

    def _free_gateway_ip(self) -> str:
        used = {a.gateway_ip for a in self.attachments.values()} | {self.config.gateway}
        for host in ipaddress.IPv4Network(self.config.gateway_subnet).hosts():
            if str(host) not in used:
                return str(host)
        raise AttachError("the gateway bridge's subnet is full")

    async def detach(self, task_id: str) -> bool:
        async with self.lock:
            attachment = self.attachments.pop(task_id, None)
            if attachment is None:
                return False
            await kernel.detach(attachment)
            save_attachments(self.state_file, self.attachments)
            self._applied.pop(f"lb:{task_id}", None)
            self.resolv_conf(task_id).unlink(missing_ok=True)
        self.changed.set()
        return True

    def resolv_conf(self, task_id: str) -> Path:
        return self.config.data_dir / "resolv" / f"{task_id}.conf"

    def write_resolv_conf(self, task_id: str) -> Path:
        path = self.resolv_conf(task_id)
        # ndots:0 keeps short names (services) from being tried with search domains.
        path.write_text(f"nameserver {self.config.gateway}\noptions ndots:0\n")
        return path
