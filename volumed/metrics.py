"""volumed's /metrics: operations and errors by operation, mounts by driver,
and whether each SeaweedFS process is up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from volumed.daemon import Volumed


class _Collector(Collector):
    def __init__(self, volumed: Volumed) -> None:
        self.volumed = volumed

    def collect(self) -> Iterator[GaugeMetricFamily]:
        volumed = self.volumed
        volumes = GaugeMetricFamily(
            "swarm_volumed_volumes", "Volumes known on this node", labels=["driver"]
        )
        users = GaugeMetricFamily(
            "swarm_volumed_mount_users", "Users (containers) holding a mount", labels=["driver"]
        )
        mounts = GaugeMetricFamily(
            "swarm_volumed_mounts", "Volumes mounted on this node", labels=["driver"]
        )
        for driver, backend in sorted(volumed.volumes.backends.items()):
            known = [v for v in volumed.volumes.volumes.values() if v.driver == driver]
            volumes.add_metric([driver], float(len(known)))
            users.add_metric([driver], float(sum(len(v.mounts) for v in known)))
            mounts.add_metric([driver], float(len(backend.mounted())))
        yield volumes
        yield users
        yield mounts
        up = GaugeMetricFamily(
            "swarm_volumed_seaweedfs_up", "1 while the SeaweedFS process runs", labels=["process"]
        )
        restarts = GaugeMetricFamily(
            "swarm_volumed_seaweedfs_restarts",
            "Times volumed restarted the SeaweedFS process",
            labels=["process"],
        )
        for state in volumed.supervisor.states if volumed.supervisor else []:
            up.add_metric([state.spec.name], 1.0 if state.up else 0.0)
            restarts.add_metric([state.spec.name], float(state.restarts))
        yield up
        yield restarts


class VolumedMetrics:
    def __init__(self, volumed: Volumed) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(volumed))
        self.operations = Counter(
            "swarm_volumed_operations",
            "Volume plugin calls, by operation",
            ["operation"],
            registry=self.registry,
        )
        self.errors = Counter(
            "swarm_volumed_errors",
            "Volume plugin calls refused or failed, by operation",
            ["operation"],
            registry=self.registry,
        )

    def observe(self, operation: str, succeeded: bool) -> None:
        self.operations.labels(operation).inc()
        if not succeeded:
            self.errors.labels(operation).inc()
