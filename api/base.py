"""Building blocks every Docker object shares: the JSON conventions (Go field
names, which empty fields are omitted), Meta, Annotations, Driver, and the
time and ID formats of docker-api.md §1.

Go's encoding/json omits a field only when its tag says `omitempty`; msgspec's
`omit_defaults=True` omits every field equal to its default. The structs here
turn `omit_defaults` on (most Docker fields are optional) and mark the fields Go
always writes with `always()` / `always_new()`: msgspec treats a value as a
default only for plain defaults and the builtin empty-container factories, so a
field whose factory is any other callable is always emitted.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec

T = TypeVar("T")

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time.Time, as Docker prints an unset timestamp."""


def always(default: T, name: str | None = None) -> T:
    """A field that is emitted even when it holds its (immutable) default."""
    return msgspec.field(default_factory=lambda: default, name=name)


def always_new(factory: Callable[[], T], name: str | None = None) -> T:
    """A field with a mutable default (dict, list, struct) that is always emitted.

    The lambda matters: with the bare `dict`/`list` factory msgspec would
    recognise an empty value as the default and omit it."""
    return msgspec.field(default_factory=lambda: factory(), name=name)


class Obj(msgspec.Struct, rename="pascal", omit_defaults=True):
    """Base of the Docker JSON objects: PascalCase keys, empty optionals omitted.
    Irregular Go names (ID, NanoCPUs, TTY, …) are spelled out per field."""


class Version(Obj):
    index: int = 0


class Meta(Obj):
    """ID, Version and timestamps; Go embeds these at the top of every swarm object."""

    id: str = always("", name="ID")
    version: Version = always_new(Version)
    created_at: str = always(ZERO_TIME)
    updated_at: str = always(ZERO_TIME)


class Annotations(Obj):
    """Name and Labels; Go writes Labels even when empty (docker-py indexes it)."""

    name: str = ""
    labels: dict[str, str] = always_new(dict)


class Driver(Obj):
    name: str = ""
    options: dict[str, str] = msgspec.field(default_factory=dict)


class Platform(Obj):
    architecture: str = ""
    os: str = msgspec.field(default="", name="OS")


class TLSInfo(Obj):
    trust_root: str = ""
    cert_issuer_subject: bytes = b""
    cert_issuer_public_key: bytes = b""


class NamedGenericResource(Obj):
    kind: str = ""
    value: str = ""


class DiscreteGenericResource(Obj):
    kind: str = ""
    value: int = 0


class GenericResource(Obj):
    named_resource_spec: NamedGenericResource | None = None
    discrete_resource_spec: DiscreteGenericResource | None = None


class Resources(Obj):
    """CPU and memory of a node, or a task's reservation."""

    nano_cpus: int = msgspec.field(default=0, name="NanoCPUs")
    memory_bytes: int = 0
    generic_resources: list[GenericResource] = msgspec.field(default_factory=list)


# --- time and IDs -------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)"
)


def format_time(unix_ns: int) -> str:
    """RFC3339Nano in UTC as Go prints it: trailing zeros of the fraction dropped."""
    seconds, frac = divmod(unix_ns, 1_000_000_000)
    # timedelta arithmetic rather than fromtimestamp: it also reaches year 1.
    moment = _EPOCH + timedelta(seconds=seconds)
    # Not strftime: glibc's %Y drops the zero padding of years before 1000.
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> int:
    """Unix nanoseconds of an RFC3339 (optionally nano) timestamp with any offset."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid RFC3339 time {text!r}")
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec), tzinfo=UTC)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    whole = (moment - _EPOCH) // timedelta(seconds=1)
    return whole * 1_000_000_000 + int((frac or "").ljust(9, "0"))


def now_time() -> str:
    return format_time(time.time_ns())


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A swarm object ID: 128 random bits as 25 lowercase base-36 digits."""
    n = secrets.randbits(128)
    digits = []
    for _ in range(25):
        n, d = divmod(n, 36)
        digits.append(_BASE36[d])
    return "".join(reversed(digits))
