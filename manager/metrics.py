"""The manager's /metrics, named as Docker's swarm metrics are: read from the
store at scrape time, plus write latency observed as writes happen."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from manager.store.store import Store
from manager.store.tables import TABLES

TASK_STATES = (
    "new",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
    "complete",
    "shutdown",
    "failed",
    "rejected",
    "remove",
    "orphaned",
)
NODE_STATES = ("unknown", "down", "ready", "disconnected")


class StoreCollector(Collector):
    def __init__(
        self, store: Store, is_leader: Callable[[], bool], raft: Callable[[], dict[str, Any]]
    ) -> None:
        self.store = store
        self.is_leader = is_leader
        self.raft = raft

    def collect(self) -> Iterator[GaugeMetricFamily]:
        leader = GaugeMetricFamily("swarm_manager_leader", "1 if this manager is the leader")
        leader.add_metric([], 1.0 if self.is_leader() else 0.0)
        yield leader
        nodes, tasks, objects = self.store.view(
            lambda tx: (
                Counter((n.get("Status") or {}).get("State", "unknown") for n in tx.all("node")),
                Counter((t.get("Status") or {}).get("State", "new") for t in tx.all("task")),
                {name: len(tx.all(name)) for name in TABLES},
            )
        )
        by_state = GaugeMetricFamily("swarm_manager_nodes", "Nodes by state", labels=["state"])
        for state in NODE_STATES:
            by_state.add_metric([state], float(nodes.get(state, 0)))
        yield by_state
        task_states = GaugeMetricFamily(
            "swarm_manager_tasks_total", "Tasks by state", labels=["state"]
        )
        for state in TASK_STATES:
            task_states.add_metric([state], float(tasks.get(state, 0)))
        yield task_states
        counts = GaugeMetricFamily("swarm_store_objects", "Objects per table", labels=["table"])
        for name, count in sorted(objects.items()):
            counts.add_metric([name], float(count))
        yield counts
        index = GaugeMetricFamily("swarm_store_index", "The store's applied index")
        index.add_metric([], float(self.store.index))
        yield index
        status = self.raft()
        for key, name, text in (
            ("raft_term", "swarm_raft_term", "The Raft term"),
            ("commit_idx", "swarm_raft_commit_index", "Raft commit index"),
            ("log_len", "swarm_raft_log_entries", "Raft log length"),
            ("partner_nodes_count", "swarm_raft_peers", "Other Raft members"),
        ):
            if key in status:
                family = GaugeMetricFamily(name, text)
                family.add_metric([], float(status[key] or 0))
                yield family


class ManagerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.write_latency = Histogram(
            "swarm_store_write_tx_latency_seconds",
            "Latency of store write transactions, by outcome",
            ["applied"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )

    def observe_write(self, seconds: float, applied: bool) -> None:
        self.write_latency.labels(applied=str(applied).lower()).observe(seconds)

    def watch(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)
