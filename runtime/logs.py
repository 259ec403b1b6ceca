"""Reading the json-file logs runtime/json_logger.py writes: one JSON object a
line, rotated to path.1, path.2, ... (higher numbers are older)."""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class LogEntry:
    time: datetime  # tz-aware UTC
    stream: str  # "stdout" | "stderr"
    line: str  # includes the trailing newline when there was one


def parse_entry(raw: bytes) -> LogEntry | None:
    """One log line, or None when it is not an entry we understand."""
    try:
        obj = json.loads(raw)
        line, stream, stamp = obj["log"], obj["stream"], obj["time"]
        if not (isinstance(line, str) and isinstance(stream, str) and isinstance(stamp, str)):
            return None
        # Python 3.11 accepts "Z" and truncates nanoseconds to microseconds.
        when = datetime.fromisoformat(stamp)
    except (ValueError, TypeError, KeyError):
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return LogEntry(when, stream, line)


def _rotated(path: Path) -> list[Path]:
    """path.N ... path.1 that exist, oldest first."""
    numbered: list[tuple[int, Path]] = []
    prefix = path.name + "."
    for candidate in path.parent.glob(f"{path.name}.*"):
        suffix = candidate.name[len(prefix) :]
        if suffix.isdigit():
            numbered.append((int(suffix), candidate))
    return [p for _, p in sorted(numbered, reverse=True)]


class _Tail:
    """An open log file read incrementally; only complete lines are consumed,
    so a line still being written (a torn last line) is read next time."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.inode = os.fstat(file.fileno()).st_ino
        self.pending = b""

    def read(self) -> list[LogEntry]:
        if os.fstat(self.file.fileno()).st_size < self.file.tell():
            # Truncated in place (max-files=1): start over from the top.
            self.file.seek(0)
            self.pending = b""
        data = self.pending + self.file.read()
        end = data.rfind(b"\n") + 1
        self.pending = data[end:]
        parsed = (parse_entry(raw) for raw in data[:end].splitlines())
        return [entry for entry in parsed if entry is not None]

    def close(self) -> None:
        self.file.close()


def _open(path: Path) -> _Tail | None:
    try:
        return _Tail(path.open("rb"))
    except FileNotFoundError:
        return None


def _open_all(path: Path) -> tuple[list[_Tail], _Tail | None]:
    """Opens the rotated files (oldest first) and the current one. The current
    file is opened first so a rotation racing with us makes it show up again
    among the numbered files, where it is recognised by inode and skipped."""
    current = _open(path)
    seen = {current.inode} if current else set()
    rotated: list[_Tail] = []
    for numbered in _rotated(path):
        tail = _open(numbered)
        if tail is None:
            continue
        if tail.inode in seen:
            tail.close()
            continue
        seen.add(tail.inode)
        rotated.append(tail)
    return rotated, current


def _check(since: datetime | None, tail: int | None) -> datetime | None:
    """Validates `tail`; returns `since` in UTC (naive times are taken as UTC)."""
    if tail is not None and tail < 0:
        raise ValueError(f"tail must not be negative: {tail}")
    if since is None or since.tzinfo is not None:
        return since
    return since.replace(tzinfo=UTC)


def _select(
    entries: Iterable[LogEntry], since: datetime | None, tail: int | None
) -> list[LogEntry]:
    if since is not None:
        entries = (e for e in entries if e.time >= since)
    if tail is None:
        return list(entries)
    return list(deque(entries, maxlen=tail))


def _initial(
    path: Path, since: datetime | None, tail: int | None
) -> tuple[list[LogEntry], _Tail | None]:
    """The entries already written, and the current file left open after them."""
    rotated, current = _open_all(path)
    try:
        chunks = [t.read() for t in rotated]
    finally:
        for t in rotated:
            t.close()
    if current is not None:
        chunks.append(current.read())
    return _select((e for chunk in chunks for e in chunk), since, tail), current


def read_logs(path: Path, since: datetime | None = None, tail: int | None = None) -> list[LogEntry]:
    """Entries from the rotated files oldest first, then `path`; those before
    `since` are skipped and only the last `tail` kept."""
    entries, current = _initial(path, _check(since, tail), tail)
    if current is not None:
        current.close()
    return entries


async def _stopped(stop: asyncio.Event | None, interval: float) -> bool:
    """Sleeps one poll interval; True when `stop` was set meanwhile."""
    if stop is None:
        await asyncio.sleep(interval)
        return False
    try:
        async with asyncio.timeout(interval):
            await stop.wait()
    except TimeoutError:
        return False
    return True


def _catch_up(path: Path, current: _Tail | None) -> tuple[list[LogEntry], _Tail | None]:
    """New entries since the last poll, following the file through rotations."""
    entries = current.read() if current is not None else []
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return entries, current  # between rename and re-create: next poll
    if current is not None and inode == current.inode:
        return entries, current
    if current is not None:
        # Rotated: our file is now path.K. Files path.K-1 ... path.1 (several
        # rotations between polls) hold what was written after it.
        entries.extend(current.read())
        current.close()
        newer: list[Path] = []
        for numbered in reversed(_rotated(path)):
            try:
                if numbered.stat().st_ino == current.inode:
                    break
            except FileNotFoundError:
                continue
            newer.append(numbered)
        # If ours is not found it was rotated out (deleted): all are newer.
        for numbered in reversed(newer):
            tail = _open(numbered)
            if tail is not None:
                entries.extend(tail.read())
                tail.close()
    fresh = _open(path)
    if fresh is not None:
        entries.extend(fresh.read())
    return entries, fresh


async def follow_logs(
    path: Path,
    since: datetime | None = None,
    tail: int | None = None,
    *,
    stop: asyncio.Event | None = None,
    poll_interval: float = 0.1,
) -> AsyncIterator[LogEntry]:
    """Yields read_logs(path, since, tail), then entries as they are appended,
    across rotations, until `stop` is set (then what was written before it) or
    the iterator is closed."""
    since = _check(since, tail)
    # The backlog can be tens of MiB: parse it off the event loop.
    entries, current = await asyncio.to_thread(_initial, path, since, tail)
    try:
        for entry in entries:
            yield entry
        while True:
            done = await _stopped(stop, poll_interval)
            entries, current = _catch_up(path, current)
            for entry in entries:
                if since is None or entry.time >= since:
                    yield entry
            if done:
                return
    finally:
        if current is not None:
            current.close()
