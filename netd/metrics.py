"""netd's /metrics: traffic per network (from its VXLAN device's counters),
endpoints attached here, static FDB entries, programming latency, DNS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from netd import kernel
from netd.plan import vxlan_name

if TYPE_CHECKING:
    from netd.daemon import Netd

SAMPLE_SECONDS = 5.0


class _Collector(Collector):
    def __init__(self, metrics: NetdMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        netd = self.metrics.netd
        names = {n.id: n.name for n in netd.snapshot.networks.values()}
        endpoints = GaugeMetricFamily(
            "swarm_netd_endpoints",
            "Containers attached on this node, per network",
            labels=["network"],
        )
        counts: dict[str, int] = {}
        for attachment in netd.attachments.values():
            for link in attachment.links:
                counts[link.network_id] = counts.get(link.network_id, 0) + 1
        for network_id, count in sorted(counts.items()):
            endpoints.add_metric([names.get(network_id, network_id)], float(count))
        yield endpoints
        fdb = GaugeMetricFamily(
            "swarm_netd_fdb_entries", "Static FDB entries (remote endpoints)", labels=["network"]
        )
        for key, peers in netd._applied.items():
            if key.startswith("peers:") and isinstance(peers, frozenset):
                network_id = key.split(":", 1)[1]
                fdb.add_metric([names.get(network_id, network_id)], float(len(peers)))
        yield fdb
        labels = ["network", "direction"]
        traffic = CounterMetricFamily(
            "swarm_netd_network_bytes", "Bytes through the network's VXLAN device", labels=labels
        )
        packets = CounterMetricFamily(
            "swarm_netd_network_packets",
            "Packets through the network's VXLAN device",
            labels=labels,
        )
        for network_id, (rxb, txb, rxp, txp) in sorted(self.metrics.counters.items()):
            name = names.get(network_id, network_id)
            traffic.add_metric([name, "rx"], float(rxb))
            traffic.add_metric([name, "tx"], float(txb))
            packets.add_metric([name, "rx"], float(rxp))
            packets.add_metric([name, "tx"], float(txp))
        yield traffic
        yield packets
        if netd.dns is not None:
            dns = CounterMetricFamily("swarm_netd_dns_queries", "DNS queries", labels=["outcome"])
            dns.add_metric(["answered"], float(netd.dns.queries - netd.dns.forwarded))
            dns.add_metric(["forwarded"], float(netd.dns.forwarded))
            dns.add_metric(["nxdomain"], float(netd.dns.nxdomain))
            yield dns


class NetdMetrics:
    def __init__(self, netd: Netd) -> None:
        self.netd = netd
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self))
        self.programming = Histogram(
            "swarm_netd_programming_seconds",
            "From a change of the cluster's network state to the kernel holding it",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
            registry=self.registry,
        )
        self.counters: dict[str, tuple[int, int, int, int]] = {}

    def programmed(self, seconds: float) -> None:
        self.programming.observe(seconds)

    async def sample_loop(self) -> None:
        """Link counters read every few seconds: a scrape must not run commands."""
        while True:
            networks = list(self.netd.snapshot.networks)
            for network_id in networks:
                self.counters[network_id] = await kernel.link_counters(vxlan_name(network_id))
            await asyncio.sleep(SAMPLE_SECONDS if networks else 0.5)
