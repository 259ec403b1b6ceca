"""GET /shoal/dispatcher/networks: the overlay state every node's netd
programs its kernel from — networks (VNI, subnet), endpoints (each task's and
node's address, on which host) and services (VIPs, published ports).

A long poll like the assignments: it answers at once when the store moved
past `index`, else after a change that matters to netd or 10 s. The whole
state is sent each time (netd diffs against what it programmed); one answer
per store index is built and shared by every node asking at that index.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from manager.allocator.ipam import mac_for
from manager.allocator.usage import attachment_addresses, live_tasks, network_info
from manager.http.context import context
from manager.http.dispatcher_api import LONG_POLL_SECONDS
from manager.http.framework import add_route, bad_request
from manager.store.state import Change
from manager.store.store import ReadTx
from manager.store.tables import Obj

WATCHED = frozenset({"network", "task", "service", "node"})


def matters(change: Change) -> bool:
    """Task changes are frequent; only those of tasks on networks count."""
    return change.table != "task" or bool((change.object or {}).get("NetworksAttachments"))


def task_names(task: Obj, service_name: str) -> list[str]:
    """The container names DNS answers for: swarm's task names."""
    slot, task_id = task.get("Slot"), task["ID"]
    if slot:
        return [f"{service_name}.{slot}.{task_id}", f"{service_name}.{slot}"]
    return [f"{service_name}.{task.get('NodeID')}.{task_id}"]


def service_entry(service: Obj) -> Obj:
    endpoint = service.get("Endpoint") or {}
    return {
        "ID": service["ID"],
        "Name": (service.get("Spec") or {}).get("Name") or "",
        "EndpointMode": (endpoint.get("Spec") or {}).get("Mode") or "vip",
        "VIPs": [
            {"NetworkID": v["NetworkID"], "Address": v["Addr"]}
            for v in endpoint.get("VirtualIPs") or []
        ],
        "Ports": [
            {
                "Protocol": p.get("Protocol") or "tcp",
                "TargetPort": int(p.get("TargetPort") or 0),
                "PublishedPort": int(p.get("PublishedPort") or 0),
                "PublishMode": p.get("PublishMode") or "ingress",
            }
            for p in endpoint.get("Ports") or []
        ],
    }


def network_state(tx: ReadTx) -> Obj:
    infos = sorted(
        (info for n in tx.all("network") if (info := network_info(n)) is not None),
        key=lambda i: (i.name, i.id),
    )
    known = {info.id for info in infos}
    nodes = {str(n["ID"]): n for n in tx.all("node")}
    services = sorted(tx.all("service"), key=lambda s: str(s["ID"]))
    names = {str(s["ID"]): str((s.get("Spec") or {}).get("Name") or "") for s in services}

    def node_addr(node_id: str) -> str:
        return str(((nodes.get(node_id) or {}).get("Status") or {}).get("Addr") or "")

    endpoints: list[Obj] = []
    for task in live_tasks(tx):
        node_id = str(task.get("NodeID") or "")
        if not node_id or not task.get("NetworksAttachments"):
            continue
        service_id = str(task.get("ServiceID") or "")
        # A removed service's tasks run until stopped: their annotations name it.
        service_name = names.get(service_id) or str(
            (task.get("ServiceAnnotations") or {}).get("Name") or ""
        )
        live = (task.get("Status") or {}).get("State") == "running" and task.get(
            "DesiredState"
        ) == "running"
        for network_id, address in attachment_addresses(task["NetworksAttachments"]):
            if network_id in known:
                endpoints.append(
                    {
                        "NetworkID": network_id,
                        "Kind": "task",
                        "ID": task["ID"],
                        "NodeID": node_id,
                        "NodeAddr": node_addr(node_id),
                        "Address": address,
                        "MAC": mac_for(address),
                        "Names": task_names(task, service_name),
                        "ServiceID": service_id,
                        "ServiceName": service_name,
                        "Live": live,
                    }
                )
    for node_id, node in nodes.items():
        for network_id, address in attachment_addresses(node.get("Attachments")):
            if network_id in known:
                endpoints.append(
                    {
                        "NetworkID": network_id,
                        "Kind": "node",
                        "ID": node_id,
                        "NodeID": node_id,
                        "NodeAddr": node_addr(node_id),
                        "Address": address,
                        "MAC": mac_for(address),
                        "Names": [],
                        "ServiceID": "",
                        "ServiceName": "",
                        "Live": True,
                    }
                )
    endpoints.sort(key=lambda e: (e["Kind"], e["ID"], e["NetworkID"]))
    return {
        "Index": tx.index,
        "Networks": [
            {
                "ID": i.id,
                "Name": i.name,
                "VNI": i.vni,
                "Subnet": i.subnet,
                "Gateway": i.gateway,
                "Internal": i.internal,
                "Ingress": i.ingress,
            }
            for i in infos
        ],
        "Endpoints": endpoints,
        "Services": [service_entry(s) for s in services],
    }


class NetworkStateEndpoint:
    """The handler, with the last answer it built (keyed by store index)."""

    def __init__(self) -> None:
        self._cached: tuple[int, bytes] | None = None

    def _body(self, tx: ReadTx) -> bytes:
        # Runs under the store's lock: the index cannot move while it builds.
        if self._cached is None or self._cached[0] != tx.index:
            state = network_state(tx)
            self._cached = (tx.index, json.dumps(state, separators=(",", ":")).encode())
        return self._cached[1]

    async def serve(self, request: web.Request) -> web.Response:
        ctx = context(request)
        try:
            since = int(request.query.get("index", "0"))
        except ValueError:
            raise bad_request("index must be a number") from None
        if ctx.store.index <= since:
            changes = ctx.store.watch(since, WATCHED)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LONG_POLL_SECONDS):
                    async for change in changes:
                        if matters(change):
                            break
            await changes.aclose()
        body = ctx.store.view(self._body)
        return web.Response(body=body, headers={"Content-Type": "application/json"})


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/shoal/dispatcher/networks", NetworkStateEndpoint().serve)
