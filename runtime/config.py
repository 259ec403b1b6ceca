"""How a runtime is set up on one host (kept free of heavy imports, so the lab's
supervisor and the agent's config code can use it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RuntimeConfig:
    socket: Path
    state_dir: Path
    namespace: str = "shoal"
    cgroup_parent: str = "shoal"
    insecure_registries: frozenset[str] = frozenset()
    log_max_bytes: int = 10 * 1024 * 1024
    log_max_files: int = 3
    init_binary: Path = Path("/usr/bin/tini-static")
    extra_labels: dict[str, str] = field(default_factory=dict)
