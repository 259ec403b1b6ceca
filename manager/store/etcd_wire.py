"""etcd's wire protocol as the etcd backend uses it: the generated stubs that
ship with PyPI etcd3, and small builders for compares and operations."""

from __future__ import annotations

import warnings
from typing import Any

import msgspec

from manager.store.tables import Obj, table

with warnings.catch_warnings():  # etcd3's generated protobuf code is from an old protoc
    warnings.simplefilter("ignore", DeprecationWarning)
    from etcd3 import etcdrpc

# Reconnect within a second of etcd's return (not gRPC's 2-minute backoff); notice
# a dead connection under a quiet watch; load the store in one range, however big.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.max_receive_message_length", -1),
]


def range_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def decode_kv(kv: Any) -> Obj:
    obj: Obj = msgspec.json.decode(bytes(kv.value))
    obj["Version"] = {"Index": int(kv.mod_revision)}
    return obj


def name_of(table_name: str, obj: Obj | None) -> str | None:
    name_of = table(table_name).name_of
    return None if name_of is None or obj is None else name_of(obj)


def pin(key: bytes, mod_revision: int | None = None, owner: str | None = None) -> Any:
    # Compare: the key still holds `owner`, or is still at `mod_revision`, or still absent.
    if owner is not None:
        return etcdrpc.Compare(key=key, target=etcdrpc.Compare.VALUE, value=owner.encode())
    if mod_revision is not None:
        return etcdrpc.Compare(key=key, target=etcdrpc.Compare.MOD, mod_revision=mod_revision)
    return etcdrpc.Compare(key=key, target=etcdrpc.Compare.VERSION, version=0)


def op(kind: str, key: bytes, value: bytes = b"", lease: int = 0) -> Any:
    if kind == "put":
        return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key, value=value, lease=lease))
    if kind == "delete":
        return etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=key))
    return etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key))


__all__ = ["CHANNEL_OPTIONS", "decode_kv", "etcdrpc", "name_of", "op", "pin", "range_end"]
