"""The in-process cluster the CLI tests run clusterctl against."""

from __future__ import annotations

import json
from pathlib import Path

from tests.component.cli_cluster import in_process_cluster


def test_clusterctl_lists_the_in_process_clusters_nodes(tmp_path: Path) -> None:
    with in_process_cluster(tmp_path) as cluster:
        done = cluster.clusterctl("node", "ls", "--format", "json")
        assert done.returncode == 0, done.stderr
        hostnames = sorted(n["Description"]["Hostname"] for n in json.loads(done.stdout))
        assert hostnames == ["manager-1", "worker-1", "worker-2"]
        created = cluster.api(
            "POST",
            "/v1.41/services/create",
            {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}},
        )
        assert created["ID"]
