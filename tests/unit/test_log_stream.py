"""Docker's log stream framing and swarm details, both ways."""

from __future__ import annotations

from api.log_stream import FrameDecoder, encode_details, encode_frame, split_details
from manager.http.logs import LogOptions, format_line


def test_frames_survive_any_chunking() -> None:
    data = encode_frame("stdout", b"one\n") + encode_frame("stderr", b"two\n")
    assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x04"
    decoder = FrameDecoder()
    frames = [f for i in range(len(data)) for f in decoder.feed(data[i : i + 1])]
    assert [(f.stream, f.payload) for f in frames] == [("stdout", b"one\n"), ("stderr", b"two\n")]
    assert decoder.buffer == b""


def test_details_are_sorted_escaped_and_parsed_back() -> None:
    attrs = {"com.docker.swarm.task.id": "t1", "com.docker.swarm.node.id": "n 1"}
    line = f"{encode_details(attrs)} hello world\n"
    assert line.startswith("com.docker.swarm.node.id=n%201,com.docker.swarm.task.id=t1 ")
    assert split_details(line) == (attrs, "hello world\n")
    assert split_details("plain line\n") == ({}, "plain line\n")


def test_a_manager_line_carries_timestamp_then_details() -> None:
    task = {"ID": "t1", "NodeID": "n1", "ServiceID": "s1"}
    entry = {"time": "2026-11-28T04:00:00.123456+00:00", "stream": "stdout", "line": "hi\n"}
    options = LogOptions(True, True, True, frozenset({"stdout"}), None, None)
    assert format_line(task, entry, options).decode() == (
        "2026-11-28T04:00:00.123456000Z com.docker.swarm.node.id=n1,"
        "com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hi\n"
    )
