"""Reading json-file logs: read_logs across rotated files, follow_logs live."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtime.json_logger import LogWriter, encode_entry, format_time
from runtime.logs import LogEntry, follow_logs, read_logs

BASE = datetime(2026, 11, 27, 21, 40, 14, tzinfo=UTC)


def stamp(second: int) -> str:
    moment = BASE + timedelta(seconds=second)
    return format_time(int(moment.timestamp()) * 1_000_000_000 + 123_456_789)


def entry(second: int, text: str, stream: str = "stdout") -> bytes:
    return encode_entry(text.encode(), stream, stamp(second))


def lines(entries: list[LogEntry]) -> list[str]:
    return [e.line for e in entries]


def test_reads_rotated_files_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    (tmp_path / "c.log.2").write_bytes(entry(0, "zero\n") + entry(1, "one\n"))
    (tmp_path / "c.log.1").write_bytes(entry(2, "two\n", "stderr"))
    log.write_bytes(entry(3, "three\n") + entry(4, "four"))
    (tmp_path / "c.log.old").write_text("not ours\n")
    (tmp_path / "other.log.1").write_bytes(entry(9, "nor this\n"))

    got = read_logs(log)
    assert lines(got) == ["zero\n", "one\n", "two\n", "three\n", "four"]
    assert got[2] == LogEntry(BASE + timedelta(seconds=2, microseconds=123456), "stderr", "two\n")
    assert all(e.time.tzinfo is UTC for e in got)


def test_since_and_tail_apply_across_files(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    (tmp_path / "c.log.1").write_bytes(b"".join(entry(i, f"{i}\n") for i in range(5)))
    log.write_bytes(b"".join(entry(i, f"{i}\n") for i in range(5, 10)))

    assert lines(read_logs(log, tail=3)) == ["7\n", "8\n", "9\n"]
    assert lines(read_logs(log, tail=7)) == [f"{i}\n" for i in range(3, 10)]
    assert read_logs(log, tail=0) == []
    since = BASE + timedelta(seconds=4)  # entries are at .123456 past the second
    assert lines(read_logs(log, since=since)) == [f"{i}\n" for i in range(4, 10)]
    assert lines(read_logs(log, since=since, tail=2)) == ["8\n", "9\n"]
    # A naive `since` is taken to be UTC.
    assert lines(read_logs(log, since=since.replace(tzinfo=None))) == lines(
        read_logs(log, since=since)
    )
    with pytest.raises(ValueError, match="tail"):
        read_logs(log, tail=-1)


def test_torn_and_garbage_lines_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    whole = entry(0, "whole\n")
    log.write_bytes(
        b"not json\n" + json.dumps({"log": 1}).encode() + b"\n" + whole + entry(1, "torn\n")[:20]
    )
    assert lines(read_logs(log)) == ["whole\n"]


def test_missing_log_is_empty(tmp_path: Path) -> None:
    assert read_logs(tmp_path / "none.log") == []


def test_entries_from_the_logger_writer_round_trip(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    writer = LogWriter(log, max_size=200, max_files=5)
    for i in range(12):
        writer.write([entry(i, f"message {i} é\n", "stderr" if i % 3 else "stdout")])
    writer.close()
    assert (tmp_path / "c.log.3").exists()
    got = read_logs(log)
    assert lines(got) == [f"message {i} é\n" for i in range(12)][-len(got) :]
    assert [e.time for e in got] == sorted(e.time for e in got)


async def collect_until(source: list[LogEntry], count: int, timeout: float = 5.0) -> list[LogEntry]:
    async with asyncio.timeout(timeout):
        while len(source) < count:
            await asyncio.sleep(0.01)
    return source


# With two files, the file being followed is deleted by the second rotation.
@pytest.mark.parametrize("max_files", [3, 2])
async def test_follow_sees_appends_and_rotation_and_stops(tmp_path: Path, max_files: int) -> None:
    log = tmp_path / "c.log"
    writer = LogWriter(log, max_size=10_000, max_files=max_files)
    writer.write([entry(0, "old 0\n"), entry(1, "old 1\n"), entry(2, "old 2\n")])
    stop = asyncio.Event()
    seen: list[LogEntry] = []

    async def follow() -> None:
        async for e in follow_logs(log, tail=2, stop=stop, poll_interval=0.02):
            seen.append(e)

    task = asyncio.create_task(follow())
    assert lines(await collect_until(seen, 2)) == ["old 1\n", "old 2\n"]

    writer.write([entry(3, "new 3\n")])
    torn = entry(4, "before rotation\n")
    with log.open("ab") as f:
        f.write(torn[:10])  # half written: not a line yet
    await collect_until(seen, 3)
    await asyncio.sleep(0.1)
    assert lines(seen)[2:] == ["new 3\n"]

    # Finish that line, then rotate twice between two polls: nothing from the
    # intermediate file may be lost.
    with log.open("ab") as f:
        f.write(torn[10:])
    writer.rotate()
    writer.write([entry(5, "in the middle\n")])
    writer.rotate()
    writer.write([entry(6, "after rotation\n")])
    await collect_until(seen, 6)
    assert lines(seen)[3:] == ["before rotation\n", "in the middle\n", "after rotation\n"]

    writer.write([entry(7, "last words\n")])
    stop.set()
    async with asyncio.timeout(5):
        await task
    # What was written before `stop` is still delivered.
    assert lines(seen)[6:] == ["last words\n"]
    writer.close()


async def test_follow_waits_for_the_file_and_survives_truncation(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    stop = asyncio.Event()
    seen: list[LogEntry] = []

    async def follow() -> None:
        since = BASE + timedelta(seconds=1)
        async for e in follow_logs(log, since=since, stop=stop, poll_interval=0.02):
            seen.append(e)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.1)
    writer = LogWriter(log, max_size=200, max_files=1)
    writer.write([entry(0, "too early\n"), entry(1, "first\n")])
    await collect_until(seen, 1)
    writer.write([entry(2, "truncates the file\n")])
    assert log.stat().st_size < len(entry(0, "too early\n") + entry(1, "first\n"))
    await collect_until(seen, 2)
    stop.set()
    async with asyncio.timeout(5):
        await task
    writer.close()
    assert lines(seen) == ["first\n", "truncates the file\n"]


async def test_follow_ends_when_closed_without_a_stop_event(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_bytes(entry(0, "only\n"))
    stream = follow_logs(log, poll_interval=0.01)
    assert (await anext(stream)).line == "only\n"
    await stream.aclose()  # type: ignore[attr-defined]
