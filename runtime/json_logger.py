"""containerd shim "binary logging" driver writing Docker's json-file format.

The shim starts this program with fd 3 = the container's stdout pipe, fd 4 = its
stderr pipe and fd 5 = a pipe it waits on until we close it (our "ready"
signal); CONTAINER_ID and CONTAINER_NAMESPACE are in the environment. The
arguments are key/value pairs built from the logging URI's query, so their order
is arbitrary: `path <file>`, `max-size <bytes>`, `max-files <n>`.

This file must stay standard-library only: the shim runs it as `python -S`,
outside the project's virtualenv, so nothing of ours is importable.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import BinaryIO, Literal

STDOUT_FD = 3
STDERR_FD = 4
READY_FD = 5

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 3
# Docker splits a log line into 16 KiB messages; readers expect the same.
MAX_ENTRY_BYTES = 16 * 1024
READ_SIZE = 64 * 1024

# Docker's max-size uses binary units (units.RAMInBytes): "10m" is 10 MiB.
_SIZE_SUFFIXES = {"k": 1024, "m": 1024**2, "g": 1024**3}


class UsageError(Exception):
    pass


class Options:
    def __init__(self, path: str, max_size: int, max_files: int) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max_files


def parse_size(text: str) -> int:
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    multiplier = 1
    if value and value[-1] in _SIZE_SUFFIXES:
        multiplier = _SIZE_SUFFIXES[value[-1]]
        value = value[:-1]
    try:
        size = int(value) * multiplier
    except ValueError:
        raise UsageError(f"bad size {text!r}") from None
    if size <= 0:
        raise UsageError(f"size must be positive: {text!r}")
    return size


def parse_args(args: Sequence[str]) -> Options:
    if len(args) % 2:
        raise UsageError(f"arguments must be key/value pairs, got {list(args)!r}")
    pairs = dict(zip(args[0::2], args[1::2], strict=True))
    path = pairs.get("path", "")
    if not path:
        raise UsageError("missing 'path <log file>'")
    max_size = parse_size(pairs["max-size"]) if "max-size" in pairs else DEFAULT_MAX_SIZE
    try:
        max_files = int(pairs.get("max-files", DEFAULT_MAX_FILES))
    except ValueError:
        raise UsageError(f"bad max-files {pairs['max-files']!r}") from None
    if max_files < 1:
        raise UsageError("max-files must be at least 1")
    # Unknown keys are ignored: the URI may carry options meant for others.
    return Options(path, max_size, max_files)


def format_time(ns: int) -> str:
    """RFC 3339 with nanoseconds in UTC; always 9 digits so the text sorts."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def encode_entry(data: bytes, stream: str, timestamp: str) -> bytes:
    # Invalid UTF-8 becomes U+FFFD, as Go's JSON encoder does in Docker.
    entry = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": timestamp}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _cut_point(data: bytes, limit: int) -> int:
    """Where to cut `data` (longer than `limit`) at most `limit` bytes in,
    without splitting a UTF-8 character: both halves would otherwise decode
    to replacement characters."""
    # A character is at most 4 bytes, so at most 3 continuation bytes precede
    # the next character's first byte.
    for cut in range(limit, max(limit - 3, 1) - 1, -1):
        if data[cut] & 0xC0 != 0x80:
            return cut
    return limit  # not UTF-8 anyway


class LineSplitter:
    """Turns a byte stream into log messages: whole lines, 16 KiB pieces of
    longer lines (the last piece keeps the newline), and whatever is left when
    the stream ends."""

    def __init__(self, limit: int = MAX_ENTRY_BYTES) -> None:
        self.limit = limit
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self.pending + data
        messages: list[bytes] = []
        start = 0
        while True:
            newline = buffer.find(b"\n", start, start + self.limit)
            if newline >= 0:
                messages.append(buffer[start : newline + 1])
                start = newline + 1
            elif len(buffer) - start > self.limit:
                cut = start + _cut_point(buffer[start:], self.limit)
                messages.append(buffer[start:cut])
                start = cut
            else:
                break
        self.pending = buffer[start:]
        return messages

    def finish(self) -> list[bytes]:
        rest, self.pending = self.pending, b""
        return [rest] if rest else []


class LogWriter:
    """Appends encoded entries to the log file, rotating file -> file.1 -> ...
    before an entry would push the file past max_size."""

    def __init__(self, path: str | Path, max_size: int, max_files: int) -> None:
        self.path = Path(path)
        self.max_size = max_size
        self.max_files = max_files
        self._broken = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Append: a restarted task reuses the same log file. Failing here (before
        # "ready") is better than running without a log, so no fallback.
        self.file: BinaryIO = self.path.open("ab")
        self.size = self.file.tell()

    def write(self, entries: Sequence[bytes]) -> None:
        """Write whole entries, then flush so readers see the batch at once."""
        batch: list[bytes] = []
        batch_size = 0
        for entry in entries:
            if self.size + batch_size + len(entry) > self.max_size and self.size + batch_size:
                self._write(b"".join(batch))
                batch, batch_size = [], 0
                self.rotate()
            batch.append(entry)
            batch_size += len(entry)
        self._write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.file.write(data)
            self.file.flush()
        except OSError as error:
            # Keep draining the pipes even when the disk is full: if we stopped
            # reading, the container would block on its next write.
            if not self._broken:
                print(f"json_logger: writing {self.path}: {error}", file=sys.stderr)
                self._broken = True
            return
        self._broken = False
        self.size += len(data)

    def rotate(self) -> None:
        self.file.close()
        mode: Literal["ab", "wb"] = "ab"
        try:
            if self.max_files > 1:
                for index in range(self.max_files - 1, 0, -1):
                    older = self._numbered(index - 1)
                    if older.exists():
                        older.replace(self._numbered(index))
            else:
                # One file only: start it over, as Docker does with max-file=1.
                mode = "wb"
        except OSError as error:
            print(f"json_logger: rotating {self.path}: {error}", file=sys.stderr)
        self.file = self._open(mode)
        self.size = self.file.tell()

    def _numbered(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}") if index else self.path

    def _open(self, mode: Literal["ab", "wb"]) -> BinaryIO:
        try:
            return self.path.open(mode)
        except OSError as error:
            # Losing the log beats blocking the container on a full pipe.
            print(f"json_logger: opening {self.path}: {error}", file=sys.stderr)
            return Path(os.devnull).open("ab")

    def close(self) -> None:
        self.file.close()


class Clock:
    """Wall-clock nanoseconds that never go backwards, so entries stay ordered
    for readers filtering with `since` even if the host clock is stepped."""

    def __init__(self) -> None:
        self.last = 0

    def now(self) -> str:
        self.last = max(self.last, time.time_ns())
        return format_time(self.last)


def pump(streams: dict[int, str], writer: LogWriter, ready_fd: int | None = None) -> None:
    """Copy the pipes to the log until every one of them reaches EOF."""
    splitters = {fd: LineSplitter() for fd in streams}
    clock = Clock()
    selector = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    if ready_fd is not None:
        with contextlib.suppress(OSError):  # started by hand, without a ready pipe
            os.close(ready_fd)
    try:
        while selector.get_map():
            entries: list[bytes] = []
            for key, _ in selector.select():
                fd = key.fd
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    messages = splitters[fd].feed(data)
                else:
                    messages = splitters[fd].finish()
                    selector.unregister(fd)
                    os.close(fd)
                timestamp = clock.now()
                entries.extend(encode_entry(m, streams[fd], timestamp) for m in messages)
            writer.write(entries)
    finally:
        # On SIGTERM, keep any unterminated line rather than dropping it.
        leftovers = [
            encode_entry(m, streams[fd], clock.now())
            for fd, splitter in splitters.items()
            for m in splitter.finish()
        ]
        writer.write(leftovers)
        selector.close()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str]) -> int:
    try:
        options = parse_args(argv[1:])
    except UsageError as error:
        print(f"json_logger: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    writer = LogWriter(options.path, options.max_size, options.max_files)
    try:
        pump({STDOUT_FD: "stdout", STDERR_FD: "stderr"}, writer, READY_FD)
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
