"""The lab's record: an append-only journal of what `lab up` is about to create.

Each entry is written and fsynced *before* the object exists, so a `lab up`
killed at any instant leaves a record that names everything it may have made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lab.plan import AddNetns, AddVethPair, MakeHostNamespaces, PrivateBindMount, Recorded, UpStep

RECORD_FILE = "record.jsonl"


def entries_for(step: UpStep) -> list[dict[str, str]]:
    """What a step creates that teardown must remove, as record entries."""
    match step:
        case AddNetns(name=name):
            return [{"netns": name}]
        case AddVethPair(netns=None, name=name):
            return [{"link": name}]
        case PrivateBindMount(path=path):
            return [{"mount": str(path)}]
        case MakeHostNamespaces(mount_ns_file=mnt, uts_ns_file=uts):
            return [{"mount": str(mnt)}, {"mount": str(uts)}]
        case _:
            return []


class Record:
    def __init__(self, lab_directory: Path) -> None:
        self.path = lab_directory / RECORD_FILE

    def append(self, entries: list[dict[str, str]]) -> None:
        if not entries:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            for entry in entries:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> Recorded:
        netns: set[str] = set()
        links: set[str] = set()
        mounts: set[str] = set()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return Recorded()
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write names nothing complete
            if not isinstance(entry, dict):
                continue
            if "netns" in entry:
                netns.add(str(entry["netns"]))
            if "link" in entry:
                links.add(str(entry["link"]))
            if "mount" in entry:
                mounts.add(str(entry["mount"]))
        return Recorded(frozenset(netns), frozenset(links), frozenset(mounts))
