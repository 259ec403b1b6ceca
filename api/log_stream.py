"""Docker's log stream, both ways: the multiplexed framing (an 8-byte header a
line: stream 1 stdout / 2 stderr, three zero bytes, big-endian length) and
the swarm details that lead a line when `details` is asked for
(`com.docker.swarm.node.id=…,…,com.docker.swarm.task.id=… line`)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from urllib.parse import quote, unquote

STREAM_NUMBERS = {"stdout": 1, "stderr": 2}
STREAM_NAMES = {number: name for name, number in STREAM_NUMBERS.items()}
HEADER = struct.Struct(">BxxxI")


def encode_frame(stream: str, payload: bytes) -> bytes:
    return HEADER.pack(STREAM_NUMBERS[stream], len(payload)) + payload


@dataclass(frozen=True)
class Frame:
    stream: str
    payload: bytes


class FrameDecoder:
    """Feed it bytes as they arrive; it returns the whole frames among them."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            number, size = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < HEADER.size + size:
                break
            payload = self.buffer[HEADER.size : HEADER.size + size]
            self.buffer = self.buffer[HEADER.size + size :]
            frames.append(Frame(STREAM_NAMES.get(number, "stdout"), payload))
        return frames


def encode_details(attrs: dict[str, str]) -> str:
    """Sorted by key, each part URL-escaped, as moby writes them."""
    return ",".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(attrs.items()))


def split_details(line: str) -> tuple[dict[str, str], str]:
    """A detailed line's attributes and the rest of it."""
    head, _, rest = line.partition(" ")
    attrs = {}
    for part in head.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            return {}, line  # not a details prefix after all
        attrs[unquote(key)] = unquote(value)
    return attrs, rest
