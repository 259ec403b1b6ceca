"""Checking and normalising a ServiceSpec the way Docker does (docker-api.md §3)."""

from __future__ import annotations

from typing import Any

import msgspec

from api.codec import encode, from_builtins
from api.errors import ApiError
from api.service import ServiceSpec
from api.validate import normalize_service_spec as validate_spec
from manager.http.framework import APIError, bad_request, not_found
from manager.http.lookup import resolve
from manager.store.store import ReadTx


def normalize_service_spec(body: Any) -> dict[str, Any]:
    """Decode as Go would, then validate and normalise as Docker does (api/)."""
    if not isinstance(body, dict):
        raise bad_request("invalid service spec: expected a JSON object")
    try:
        spec = validate_spec(from_builtins(body, ServiceSpec))
    except ApiError as exc:
        raise APIError(exc.status, exc.message) from None
    normalized: dict[str, Any] = msgspec.json.decode(encode(spec))
    normalized.setdefault("Labels", {})
    return normalized


def resolve_networks(tx: ReadTx, spec: dict[str, Any]) -> None:
    """Network targets may be names; the store keeps IDs."""
    template = spec["TaskTemplate"]
    attachments = template.get("Networks") or spec.pop("Networks", None) or []
    resolved = []
    for attachment in attachments:
        target = str(attachment.get("Target") or "")
        try:
            network = resolve(tx, "network", target)
        except APIError:
            raise not_found(f"network {target} not found") from None
        resolved.append({**attachment, "Target": network["Id"]})
    if resolved:
        template["Networks"] = resolved
