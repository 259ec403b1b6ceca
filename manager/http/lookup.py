"""IDs and finding objects the way the docker CLI names them."""

from __future__ import annotations

from api.base import new_id
from manager.http.framework import APIError, bad_request, not_found
from manager.store.store import ReadTx
from manager.store.tables import Obj, object_id


def name_of(table: str, obj: Obj) -> str:
    if table in ("network", "volume"):
        return str(obj.get("Name") or "")
    return str((obj.get("Spec") or {}).get("Name") or "")


def resolve(tx: ReadTx, table: str, ref: str, kind: str | None = None) -> Obj:
    """Full ID, then exact name, then unique ID prefix (docker-api.md §1)."""
    kind = kind or table
    if not ref:
        raise not_found(f"{kind} {ref} not found")
    found = tx.get(table, ref)
    if found is not None:
        return found
    named = tx.by_name(table, ref)
    if named is not None:
        return named
    matches = [o for o in tx.all(table) if object_id(table, o).startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise bad_request(f"{kind} {ref} is ambiguous ({len(matches)} matches found)")
    raise not_found(f"{kind} {ref} not found")


def matches_filters(
    obj: Obj, table: str, filters: dict[str, list[str]], extra: dict[str, object] | None = None
) -> bool:
    """The filters every list endpoint shares: id and name by prefix, label."""
    oid = object_id(table, obj)
    if "id" in filters and not any(oid.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(name_of(table, obj).startswith(v) for v in filters["name"]):
        return False
    if "label" in filters:
        labels = (obj.get("Spec") or {}).get("Labels") or obj.get("Labels") or {}
        for wanted in filters["label"]:
            key, sep, value = wanted.partition("=")
            if key not in labels or (sep and labels[key] != value):
                return False
    return True


__all__ = ["APIError", "matches_filters", "name_of", "new_id", "resolve"]
