"""What the DNS server answers from: the cluster's services and tasks on
overlay networks, and which containers on this node are on which networks
(known by their address on the gateway bridge, where their queries come from)."""

from __future__ import annotations

from netd.dns import ServiceRecord, TaskRecord, View
from netd.model import Attachment, Snapshot


def dns_view(snapshot: Snapshot, attachments: dict[str, Attachment]) -> View:
    tasks: dict[str, dict[str, list[tuple[tuple[str, ...], str, str, bool]]]] = {}
    for endpoint in snapshot.endpoints:
        if endpoint.kind != "task":
            continue
        per_service = tasks.setdefault(endpoint.service_id, {})
        per_service.setdefault(endpoint.id, []).append(
            (endpoint.names, endpoint.network_id, endpoint.ip, endpoint.live)
        )
    services = []
    for service in snapshot.services:
        records = []
        for entries in tasks.get(service.id, {}).values():
            names = entries[0][0]
            records.append(
                TaskRecord(
                    names=list(names),
                    addresses={network: ip for _, network, ip, _ in entries},
                    live=all(live for *_, live in entries),
                )
            )
        services.append(
            ServiceRecord(
                name=service.name, mode=service.mode, vips=dict(service.vips), tasks=records
            )
        )
    clients = {a.gateway_ip: a.networks() for a in attachments.values()}
    return View(clients=clients, services=services)
