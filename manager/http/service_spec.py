"""Checking and normalising a ServiceSpec the way Docker does (docker-api.md §3)."""

from __future__ import annotations

import re
from typing import Any

from manager.http.framework import APIError, bad_request, not_found
from manager.http.lookup import resolve
from manager.store.store import ReadTx

_CONSTRAINT = re.compile(r"^\s*[\w.\-]+\s*(==|!=)\s*\S.*$")
MODES = ("Replicated", "Global", "ReplicatedJob", "GlobalJob")


def normalize_service_spec(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("invalid service spec: expected a JSON object")
    spec: dict[str, Any] = dict(body)
    spec.setdefault("Labels", {})
    template = spec.get("TaskTemplate")
    if not isinstance(template, dict):
        raise bad_request("TaskSpec: missing ContainerSpec")
    container = template.get("ContainerSpec")
    if not isinstance(container, dict) or not container.get("Image"):
        raise bad_request("ContainerSpec: image reference must be provided")
    template.setdefault("ForceUpdate", 0)
    spec["Mode"] = _normalize_mode(spec.get("Mode"))
    for constraint in (template.get("Placement") or {}).get("Constraints") or []:
        if not _CONSTRAINT.match(str(constraint)):
            raise bad_request(f"invalid constraint: {constraint!r} (use key==value or key!=value)")
    restart = template.get("RestartPolicy") or {}
    if restart.get("Condition", "any") not in ("none", "on-failure", "any"):
        raise bad_request(f"invalid RestartPolicy Condition {restart.get('Condition')!r}")
    for key in ("UpdateConfig", "RollbackConfig"):
        config = spec.get(key) or {}
        if config.get("FailureAction", "pause") not in ("pause", "continue", "rollback", ""):
            raise bad_request(f"invalid {key} FailureAction {config.get('FailureAction')!r}")
        if config.get("Order", "stop-first") not in ("stop-first", "start-first", ""):
            raise bad_request(f"invalid {key} Order {config.get('Order')!r}")
    for port in (spec.get("EndpointSpec") or {}).get("Ports") or []:
        if port.get("Protocol", "tcp") not in ("tcp", "udp", "sctp"):
            raise bad_request(f"invalid port protocol {port.get('Protocol')!r}")
        if port.get("PublishMode", "ingress") not in ("ingress", "host"):
            raise bad_request(f"invalid port publish mode {port.get('PublishMode')!r}")
    return spec


def _normalize_mode(mode: Any) -> dict[str, Any]:
    if not mode:
        return {"Replicated": {"Replicas": 1}}
    if not isinstance(mode, dict):
        raise bad_request("invalid service mode")
    present = [m for m in MODES if m in mode]
    if len(present) != 1:
        raise bad_request(
            "service mode must be exactly one of replicated, global, replicated-job or global-job"
        )
    name = present[0]
    value = dict(mode[name] or {})
    if name == "Replicated":
        replicas = value.get("Replicas")
        value["Replicas"] = 1 if replicas is None else replicas
        if not isinstance(value["Replicas"], int) or value["Replicas"] < 0:
            raise bad_request(f"invalid replicas value {replicas!r}: must be 0 or more")
    if name == "ReplicatedJob":
        value["MaxConcurrent"] = value.get("MaxConcurrent") or 1
        value["TotalCompletions"] = value.get("TotalCompletions") or value["MaxConcurrent"]
    return {name: value}


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
