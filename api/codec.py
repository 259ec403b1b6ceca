"""JSON in and out, with the leniency of Go's encoding/json that clients rely on.

Decoding follows Go rather than msgspec's strict defaults in two ways:
- object keys match struct fields case-insensitively (docker-py sends
  `{"Mode": {"replicated": {...}}}`);
- `null` for a field that cannot hold None leaves the field at its default
  (old docker-py sends `"Command": null`).
Unknown keys are ignored, as Go does. Type mismatches still fail, as in Go,
with InvalidArgument (400) naming the field.
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVar

import msgspec
from msgspec import inspect as mi

from api.errors import InvalidArgument

T = TypeVar("T")

# Go writes map keys sorted; "deterministic" does the same and keeps struct order.
_encoder = msgspec.json.Encoder(order="deterministic")
_AT_PATH = re.compile(r"^(?P<detail>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


def encode(obj: object) -> bytes:
    return _encoder.encode(obj)


def decode(data: bytes | str, type: type[T]) -> T:
    """Decode a request body into `type`; InvalidArgument on any bad input."""
    if not data.strip():
        # What moby says for an empty body.
        raise InvalidArgument("got EOF while reading request body")
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as e:
        raise InvalidArgument(f"invalid JSON: {_one_line(str(e))}") from None
    return from_builtins(raw, type)


def from_builtins(raw: object, type: type[T]) -> T:
    """Convert already-parsed JSON (dicts, lists, …) into `type`, as `decode` does."""
    try:
        return msgspec.convert(_normalise(raw, _info(type)), type)
    except msgspec.ValidationError as e:
        raise InvalidArgument(_describe(str(e))) from None


_infos: dict[Any, mi.Type] = {}


def _info(tp: Any) -> mi.Type:
    info = _infos.get(tp)
    if info is None:
        info = _infos[tp] = mi.type_info(tp)
    return info


@functools.cache
def _fields_by_folded_key(cls: type) -> dict[str, mi.Field]:
    info = _info(cls)
    assert isinstance(info, mi.StructType)
    return {f.encode_name.casefold(): f for f in info.fields}


def _nullable(tp: mi.Type) -> bool:
    if isinstance(tp, mi.UnionType):
        return any(isinstance(t, mi.NoneType | mi.AnyType) for t in tp.types)
    return isinstance(tp, mi.NoneType | mi.AnyType)


def _normalise(value: Any, tp: mi.Type) -> Any:
    """Rewrite `value` so msgspec's exact-key decoding sees the struct's spelling."""
    if isinstance(tp, mi.UnionType):
        return _normalise(value, _member_for(value, tp))
    if isinstance(tp, mi.StructType) and isinstance(value, dict):
        fields = _fields_by_folded_key(tp.cls)
        out: dict[Any, Any] = {}
        for key, item in value.items():
            field = fields.get(key.casefold()) if isinstance(key, str) else None
            if field is None:
                out[key] = item  # unknown: msgspec ignores it, as Go does
            elif item is None and not _nullable(field.type):
                out.pop(field.encode_name, None)  # Go: null leaves the zero value
            else:
                # A later spelling of the same field wins, as in Go.
                out[field.encode_name] = _normalise(item, field.type)
        return out
    if isinstance(value, list):
        if isinstance(tp, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            return [_normalise(v, tp.item_type) for v in value]
        if isinstance(tp, mi.TupleType) and len(tp.item_types) == len(value):
            return [_normalise(v, t) for v, t in zip(value, tp.item_types, strict=True)]
    if isinstance(tp, mi.DictType) and isinstance(value, dict):
        # Map keys are data (labels, options): never renamed.
        return {k: _normalise(v, tp.value_type) for k, v in value.items()}
    return value


def _member_for(value: Any, union: mi.UnionType) -> mi.Type:
    """The member of an Optional/union a JSON value would decode as."""
    for member in union.types:
        if isinstance(value, dict) and isinstance(member, mi.StructType | mi.DictType):
            return member
        if isinstance(value, list) and isinstance(
            member, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType | mi.TupleType
        ):
            return member
    return mi.AnyType()


def _describe(error: str) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.Mode.Replicated.Replicas`"
    as "invalid JSON: Mode.Replicated.Replicas: expected int, got str"."""
    m = _AT_PATH.match(error)
    detail, path = (m["detail"], m["path"].lstrip(".")) if m else (error, "")
    detail = detail.replace("`", "")
    detail = detail[:1].lower() + detail[1:]
    where = f"{path}: " if path else ""
    return _one_line(f"invalid JSON: {where}{detail}")


def _one_line(text: str) -> str:
    return " ".join(text.split())
