"""The build cache: which state a build step led to, by a key made of the
state before it and the step with its inputs.

A small JSON index in the runtime's state directory maps each key to the
config after the step (history and `created` times included, so a cached
rebuild gives byte-identical configs and so the same image digest) and the
layer the step made, if any. The layers themselves live in containerd's
content store, kept by the images that use them; the builder checks a
layer is still there before it trusts an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX_VERSION = 1
MAX_ENTRIES = 4000


def step_key(parent: str, step: str, inputs: str = "") -> str:
    """parent: the config digest before the step; step: the instruction as
    the builder understood it (expanded); inputs: e.g. a COPY's file digest."""
    data = json.dumps([INDEX_VERSION, parent, step, inputs]).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CachedLayer:
    digest: str  # the compressed blob
    size: int
    media_type: str
    diff_id: str  # sha256 of the uncompressed tar

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "diff_id": self.diff_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CachedLayer:
        return cls(
            str(data["digest"]), int(data["size"]), str(data["media_type"]), str(data["diff_id"])
        )


@dataclass(frozen=True)
class CacheEntry:
    config: dict[str, Any]
    layer: CachedLayer | None  # None: the step changed only the config


class BuildCache:
    """One build's view of the index: loaded at the start, saved (merged with
    what other builds saved meanwhile) at the end."""

    def __init__(self, path: Path, max_entries: int = MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self._entries = self._read()
        self._changed: dict[str, dict[str, Any]] = {}
        self._forgotten: set[str] = set()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # no cache yet, or a damaged one: start afresh
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> CacheEntry | None:
        raw = self._entries.get(key)
        if raw is None:
            return None
        try:
            layer = raw.get("layer")
            entry = CacheEntry(dict(raw["config"]), CachedLayer.from_json(layer) if layer else None)
        except (KeyError, TypeError, ValueError):
            return None
        self._changed[key] = {**raw, "used": time.time()}
        return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        raw = {
            "config": entry.config,
            "layer": entry.layer.to_json() if entry.layer else None,
            "used": time.time(),
        }
        self._entries[key] = raw
        self._changed[key] = raw

    def forget(self, key: str) -> None:
        """Drop an entry whose layer is gone from the content store."""
        self._entries.pop(key, None)
        self._changed.pop(key, None)
        self._forgotten.add(key)

    def save(self) -> None:
        """Merge this build's entries into the index on disk, dropping the
        least recently used beyond max_entries; written aside and renamed."""
        if not self._changed and not self._forgotten:
            return
        entries = {**self._read(), **self._changed}
        for key in self._forgotten:
            entries.pop(key, None)
        if len(entries) > self.max_entries:
            by_use = sorted(entries, key=lambda k: float(entries[k].get("used", 0)))
            for key in by_use[: len(entries) - self.max_entries]:
                del entries[key]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps({"version": INDEX_VERSION, "entries": entries}))
        partial.replace(self.path)
        self._entries = entries
        self._changed = {}
        self._forgotten = set()
