"""/nodes: list, inspect, update (role, availability, labels), remove."""

from __future__ import annotations

import time

from aiohttp import web

from manager.http.context import APIContext, context
from manager.http.forward import forward_to_leader
from manager.http.framework import (
    APIError,
    add_route,
    bad_request,
    json_response,
    parse_filters,
    query_bool,
    read_json,
    required_version,
)
from manager.http.join import MEMBERSHIP_REMOVE
from manager.http.lookup import resolve
from manager.http.swarm import require_cluster
from manager.http.writes import OUT_OF_SEQUENCE, write
from manager.store.store import ReadTx, WriteTx
from manager.store.tables import Obj

NODE_FILTERS = {"id", "label", "membership", "name", "node.label", "role"}


def shown(ctx: APIContext, node: Obj) -> Obj:
    """A node as Docker shows it: the leader flag is Raft's word, read now."""
    raft_addr = node.get("RaftAddr")
    node = {k: v for k, v in node.items() if k != "RaftAddr"}
    if "ManagerStatus" in node:
        leader = ctx.manager.leadership.leader()
        status = dict(node["ManagerStatus"])
        status["Leader"] = leader is not None and leader == raft_addr
        node["ManagerStatus"] = status
    return node


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def node_matches(node: Obj, filters: dict[str, list[str]]) -> bool:
    spec = node.get("Spec") or {}
    description = node.get("Description") or {}
    if "id" in filters and not any(node["ID"].startswith(v) for v in filters["id"]):
        return False
    names = [spec.get("Name") or "", description.get("Hostname") or ""]
    if "name" in filters and not any(n.startswith(v) for v in filters["name"] for n in names):
        return False
    if "role" in filters and spec.get("Role") not in filters["role"]:
        return False
    if "membership" in filters and "accepted" not in filters["membership"]:
        return False
    if "label" in filters and not _labels_match(
        (description.get("Engine") or {}).get("Labels") or {}, filters["label"]
    ):
        return False
    return not (
        "node.label" in filters
        and not _labels_match(spec.get("Labels") or {}, filters["node.label"])
    )


async def list_nodes(request: web.Request) -> web.Response:
    ctx = context(request)
    filters = parse_filters(request, NODE_FILTERS)

    def read(tx: ReadTx) -> list[Obj]:
        require_cluster(tx)
        return [shown(ctx, n) for n in tx.all("node") if node_matches(n, filters)]

    return json_response(sorted(ctx.store.view(read), key=lambda n: n["ID"]))


async def inspect_node(request: web.Request) -> web.Response:
    ctx = context(request)

    def read(tx: ReadTx) -> Obj:
        require_cluster(tx)
        return shown(ctx, _find(tx, request.match_info["id"]))

    return json_response(ctx.store.view(read))


def _find(tx: ReadTx, ref: str) -> Obj:
    node = tx.get("node", ref)
    if node is not None:
        return node
    named = [
        n
        for n in tx.all("node")
        if ref in ((n.get("Spec") or {}).get("Name"), (n.get("Description") or {}).get("Hostname"))
    ]
    if len(named) == 1:
        return named[0]
    return resolve(tx, "node", ref)


async def update_node(request: web.Request) -> web.Response:
    ctx = context(request)
    version = required_version(request, "node")
    spec = await read_json(request)
    if not isinstance(spec, dict):
        raise bad_request("invalid node spec")
    role = spec.get("Role") or "worker"
    availability = spec.get("Availability") or "active"
    if role not in ("worker", "manager"):
        raise bad_request(f"invalid role {role!r}: must be worker or manager")
    if availability not in ("active", "pause", "drain"):
        raise bad_request(f"invalid availability {availability!r}: must be active, pause or drain")

    node = ctx.store.view(lambda tx: _find(tx, request.match_info["id"]))
    was_manager = (node.get("Spec") or {}).get("Role") == "manager"
    demoting = was_manager and role == "worker"
    if demoting and "ManagerStatus" in node:
        # Only managers that run (in Raft, or on etcd) keep the cluster alive.
        running = ctx.store.view(
            lambda tx: [n for n in tx.all("node") if "ManagerStatus" in n and n["ID"] != node["ID"]]
        )
        if not running:
            raise bad_request(
                "rpc error: code = FailedPrecondition desc = attempting to demote the last "
                "manager of the swarm"
            )
        remove_member = request.app.get(MEMBERSHIP_REMOVE)
        if remove_member is not None and node.get("RaftAddr"):
            if not ctx.manager.leadership.is_leader():
                return await forward_to_leader(request)
            if int(node["Version"]["Index"]) != version:
                raise APIError(500, OUT_OF_SEQUENCE)
            await remove_member(str(node["RaftAddr"]))  # commits with the others' quorum
    # Promoting changes the node's role and, at its next heartbeat, its
    # certificate; a manager process joins on that host with the manager token.

    def change(tx: WriteTx) -> None:
        current = _find(tx, request.match_info["id"])
        current["Version"] = {"Index": version}
        current["Spec"] = {
            "Name": spec.get("Name") or "",
            "Labels": spec.get("Labels") or {},
            "Role": role,
            "Availability": availability,
        }
        if demoting:
            current.pop("ManagerStatus", None)
            current.pop("RaftAddr", None)
            tx.update("node", current, check_version=False)  # the version was checked above
        else:
            tx.update("node", current)

    await write(ctx.store, change)
    return web.Response(status=200)


def removed_nodes_after(cluster: Obj, node_id: str, now: float) -> dict[str, float]:
    """A removed node's certificate stays refused until it would have expired
    (swarm's blacklist); older entries are dropped."""
    nanos = int(cluster["Spec"].get("CAConfig", {}).get("NodeCertExpiry") or 0)
    removed = {k: float(v) for k, v in (cluster.get("RemovedNodes") or {}).items() if v > now}
    removed[node_id] = now + max(nanos / 1e9, 3600.0)
    return removed


async def remove_node(request: web.Request) -> web.Response:
    ctx = context(request)
    force = query_bool(request, "force")

    def remove(tx: WriteTx) -> None:
        node = _find(tx, request.match_info["id"])
        if (node.get("Status") or {}).get("State") != "down" and not force:
            raise bad_request(
                f"rpc error: code = FailedPrecondition desc = node {node['ID']} is not down "
                "and can't be removed"
            )
        if (node.get("Spec") or {}).get("Role") == "manager":
            raise bad_request(
                f"rpc error: code = FailedPrecondition desc = node {node['ID']} is a cluster "
                "manager and is a member of the raft cluster. It must be demoted to worker "
                "before removal"
            )
        tx.delete("node", node["ID"])
        cluster = require_cluster(tx)
        cluster["RemovedNodes"] = removed_nodes_after(cluster, str(node["ID"]), time.time())
        tx.update("cluster", cluster, check_version=False)

    await write(ctx.store, remove)
    return web.Response(status=200)


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/nodes", list_nodes)
    add_route(router, "GET", "/nodes/{id}", inspect_node)
    add_route(router, "POST", "/nodes/{id}/update", update_node)
    add_route(router, "DELETE", "/nodes/{id}", remove_node)
