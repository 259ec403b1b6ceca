"""runtime/json_logger.py, run for real the way containerd's shim runs it: the
container's stdout and stderr pipes on fds 3 and 4, the ready pipe on fd 5."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from runtime import json_logger

# Moves the three pipe ends passed by number onto fds 3, 4 and 5, then execs
# the logger program, exactly as the shim's exec would leave it.
LAUNCH = """
import fcntl, os, sys
fds = [fcntl.fcntl(int(a), fcntl.F_DUPFD, 10) for a in sys.argv[1:4]]
for a in sys.argv[1:4]:
    os.close(int(a))
for fd, target in zip(fds, (3, 4, 5)):
    os.dup2(fd, target)
    os.close(fd)
os.execv(sys.argv[4], sys.argv[4:])
"""


@dataclass
class Logger:
    process: subprocess.Popen[bytes]
    stdout: int  # write ends the test plays the container with
    stderr: int
    ready: int  # read end of the ready pipe

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def wait_ready(self, timeout: float = 10.0) -> None:
        readable, _, _ = select.select([self.ready], [], [], timeout)
        assert readable, "logger never closed its ready pipe"
        assert os.read(self.ready, 1) == b"", "ready pipe must be closed, not written"

    def finish(self, timeout: float = 10.0) -> int:
        for fd in (self.stdout, self.stderr):
            os.close(fd)
        code = self.process.wait(timeout)
        os.close(self.ready)
        return code


def install(directory: Path) -> Path:
    """The logger as the runtime installs it: an executable copy, away from
    our packages, run by this interpreter without site-packages."""
    source = Path(json_logger.__file__).read_text()
    binary = directory / "shoal-json-logger"
    binary.write_text(f"#!{sys.executable} -S\n{source}")
    binary.chmod(0o755)
    return binary


def start(binary: Path, args: list[str]) -> Logger:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ready_r, ready_w = os.pipe()
    theirs = (out_r, err_r, ready_w)
    env = {**os.environ, "CONTAINER_ID": "c1", "CONTAINER_NAMESPACE": "shoal"}
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *map(str, theirs), str(binary), *args],
        pass_fds=theirs,
        env=env,
    )
    for fd in theirs:
        os.close(fd)  # or EOF never comes: we would hold the pipes open
    return Logger(process, out_w, err_w, ready_r)


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for_lines(path: Path, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(path.read_bytes().splitlines()) < count:
        assert time.monotonic() < deadline, f"{path} never reached {count} lines"
        time.sleep(0.01)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("bin"))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "logs" / "c1.log"


@pytest.mark.parametrize("order", ["path-first", "path-last"])
def test_both_streams_are_tagged_timestamped_and_in_order(
    binary: Path, log: Path, order: str
) -> None:
    args = ["path", str(log), "max-size", "1000000", "max-files", "2"]
    if order == "path-last":
        args = ["max-files", "2", "max-size", "1000000", "path", str(log)]
    logger = start(binary, args)
    logger.wait_ready()
    assert logger.process.poll() is None
    # Ready means the file is open (and, here, created) but nothing written yet.
    assert log.read_bytes() == b""
    logger.write(logger.stdout, b"hello\n")
    logger.write(logger.stderr, b"oops\n")
    logger.write(logger.stdout, b"two\nlines\n")
    assert logger.finish() == 0

    got = entries(log)
    # Which pipe is read first is up to the scheduler; each stream keeps its order.
    assert [e["log"] for e in got if e["stream"] == "stdout"] == ["hello\n", "two\n", "lines\n"]
    assert [e["log"] for e in got if e["stream"] == "stderr"] == ["oops\n"]
    assert len(got) == 4
    assert all(list(e) == ["log", "stream", "time"] for e in got)
    times = [e["time"] for e in got]
    assert all(t.endswith("Z") and len(t) == len("2026-11-27T21:40:14.123456789Z") for t in times)
    assert times == sorted(times)
    assert all(parse_time(t).utcoffset() is not None for t in times)


def test_writes_arriving_apart_keep_their_order(binary: Path, log: Path) -> None:
    logger = start(binary, ["path", str(log)])
    logger.wait_ready()
    for i in range(5):
        fd = logger.stdout if i % 2 == 0 else logger.stderr
        logger.write(fd, f"line {i}\n".encode())
        # Let the logger write it out before the next one arrives.
        wait_for_lines(log, i + 1)
    assert logger.finish() == 0
    got = entries(log)
    assert [e["log"] for e in got] == [f"line {i}\n" for i in range(5)]
    assert [e["stream"] for e in got] == ["stdout", "stderr"] * 2 + ["stdout"]
    assert [e["time"] for e in got] == sorted(e["time"] for e in got)


def test_long_lines_are_split_at_16k_and_a_final_partial_line_is_kept(
    binary: Path, log: Path
) -> None:
    logger = start(binary, ["max-size", "10000000", "path", str(log)])
    logger.wait_ready()
    long_line = "x" * (40 * 1024)
    logger.write(logger.stdout, (long_line + "\n").encode())
    logger.write(logger.stdout, b"no newline at the end")
    assert logger.finish() == 0
    got = [e["log"] for e in entries(log)]
    limit = 16 * 1024
    # Only the last piece carries the newline; the partial line comes at EOF.
    assert got == [
        long_line[:limit],
        long_line[limit : 2 * limit],
        long_line[2 * limit :] + "\n",
        "no newline at the end",
    ]


def test_concurrent_writers_never_interleave_half_lines(binary: Path, log: Path) -> None:
    logger = start(binary, ["path", str(log)])
    logger.wait_ready()
    sent = {
        "stdout": [f"out {i} {'o' * (i % 300)}\n" for i in range(2000)],
        "stderr": [f"err {i} {'e' * (i % 500)}\n" for i in range(2000)],
    }
    threads = [
        threading.Thread(target=logger.write, args=(fd, "".join(sent[name]).encode()), daemon=True)
        for fd, name in ((logger.stdout, "stdout"), (logger.stderr, "stderr"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert logger.finish() == 0
    got = entries(log)
    for name, lines in sent.items():
        assert [e["log"] for e in got if e["stream"] == name] == lines


def test_rotation_keeps_max_files_and_respects_max_size(binary: Path, log: Path) -> None:
    logger = start(binary, ["max-files", "3", "path", str(log), "max-size", "2000"])
    logger.wait_ready()
    lines = [f"message number {i:04d}\n" for i in range(400)]
    for line in lines:
        logger.write(logger.stdout, line.encode())
    assert logger.finish() == 0

    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["c1.log", "c1.log.1", "c1.log.2"]
    for name in files:
        assert 0 < (log.parent / name).stat().st_size <= 2000
    kept = [e["log"] for p in ("c1.log.2", "c1.log.1", "c1.log") for e in entries(log.parent / p)]
    # The newest entries survive, contiguous and in order, across the files.
    assert kept == lines[-len(kept) :]
    assert len(kept) > 2000 // 100


def test_one_file_is_truncated_instead_of_rotated(binary: Path, log: Path) -> None:
    logger = start(binary, ["path", str(log), "max-size", "500", "max-files", "1"])
    logger.wait_ready()
    for i in range(100):
        logger.write(logger.stdout, f"message {i:03d}\n".encode())
    assert logger.finish() == 0
    assert sorted(p.name for p in log.parent.iterdir()) == ["c1.log"]
    assert entries(log)[-1]["log"] == "message 099\n"


def test_sigterm_keeps_an_unterminated_line(binary: Path, log: Path) -> None:
    logger = start(binary, ["path", str(log)])
    logger.wait_ready()
    logger.write(logger.stdout, b"done\nhalf a li")
    wait_for_lines(log, 1)  # "done" is out, so "half a li" was read too
    logger.process.send_signal(signal.SIGTERM)
    assert logger.finish() == 0
    assert [e["log"] for e in entries(log)] == ["done\n", "half a li"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(json_logger.UsageError):
        json_logger.parse_args(["path"])
    with pytest.raises(json_logger.UsageError):
        json_logger.parse_args(["max-size", "10"])
    with pytest.raises(json_logger.UsageError):
        json_logger.parse_args(["path", "/x", "max-size", "lots"])
    options = json_logger.parse_args(["max-size", "2m", "path", "/x", "other", "y"])
    assert (options.path, options.max_size, options.max_files) == ("/x", 2 * 1024 * 1024, 3)
    assert json_logger.main(["json_logger"]) == 2


def test_splitter_keeps_utf8_characters_whole() -> None:
    splitter = json_logger.LineSplitter(limit=8)
    text = "ab€€€€\n"  # 3 bytes per euro sign
    pieces = splitter.feed(text.encode())
    assert b"".join(pieces) == text.encode()
    assert all(len(p) <= 8 for p in pieces)
    assert [p.decode() for p in pieces] == ["ab€€", "€€\n"]
    assert splitter.feed(b"tail") == []
    assert splitter.finish() == [b"tail"]
    assert splitter.finish() == []


def test_time_format_is_rfc3339_nano_utc() -> None:
    assert json_logger.format_time(1_795_815_614_123_456_789) == "2026-11-27T21:40:14.123456789Z"
    assert json_logger.format_time(5) == "1970-01-01T00:00:00.000000005Z"
