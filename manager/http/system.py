"""/_ping, /version and /info (docker-api.md §1 and §3)."""

from __future__ import annotations

import platform

from aiohttp import web

from manager.http.context import APIContext, context
from manager.http.framework import API_VERSION, MIN_API_VERSION, add_route, json_response
from manager.store.store import ReadTx
from manager.store.tables import Obj

# Cluster fields the API never shows: the CA's key above all.
PRIVATE_FIELDS = ("JoinTokens", "Digest", "RootCA", "RaftKey", "RemovedNodes")

VERSION = "20.10.24"
GIT_COMMIT = "shoal"
GO_VERSION = "go1.20"


async def ping(request: web.Request) -> web.Response:
    return web.Response(
        body=b"" if request.method == "HEAD" else b"OK",
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache",
        },
    )


async def version(request: web.Request) -> web.Response:
    kernel = platform.release()
    details = {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT,
        "GoVersion": GO_VERSION,
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": kernel,
        "Experimental": "false",
        "BuildTime": "2026-11-27T00:00:00.000000000+00:00",
    }
    return json_response(
        {
            "Platform": {"Name": "Shoal"},
            "Components": [{"Name": "Engine", "Version": VERSION, "Details": details}],
            "Version": VERSION,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": GIT_COMMIT,
            "GoVersion": GO_VERSION,
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": kernel,
            "BuildTime": details["BuildTime"],
        }
    )


def cluster_of(tx: ReadTx) -> Obj | None:
    clusters = tx.all("cluster")
    return clusters[0] if clusters else None


def swarm_info(ctx: APIContext, tx: ReadTx) -> dict[str, object]:
    cluster = cluster_of(tx)
    if cluster is None and ctx.manager.joining:
        # Joined, restarting into the cluster: `docker swarm join` reads this.
        return {
            "NodeID": ctx.manager.node_id,
            "NodeAddr": "",
            "LocalNodeState": "pending",
            "ControlAvailable": True,
            "Error": "",
            "RemoteManagers": None,
        }
    if cluster is None:
        return {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        }
    nodes = tx.all("node")
    managers = [n for n in nodes if (n.get("Spec") or {}).get("Role") == "manager"]
    info: dict[str, object] = {
        "NodeID": ctx.manager.node_id,
        "NodeAddr": ctx.manager.advertise_addr.rsplit(":", 1)[0],
        "LocalNodeState": "active",
        "ControlAvailable": True,
        "Error": "",
        "RemoteManagers": [
            {"NodeID": m["ID"], "Addr": (m.get("ManagerStatus") or {}).get("Addr", "")}
            for m in managers
        ],
        "Nodes": len(nodes),
        "Managers": len(managers),
    }
    info["Cluster"] = {k: v for k, v in cluster.items() if k not in PRIVATE_FIELDS}
    return info


async def system_info(request: web.Request) -> web.Response:
    ctx = context(request)
    swarm = ctx.store.view(lambda tx: swarm_info(ctx, tx))
    m = ctx.manager
    return json_response(
        {
            "ID": m.node_id,
            "Containers": 0,
            "ContainersRunning": 0,
            "ContainersPaused": 0,
            "ContainersStopped": 0,
            "Images": 0,
            "Driver": "overlayfs",
            "DriverStatus": [],
            "Plugins": {
                "Volume": ["local", "shoal"],
                "Network": ["bridge", "overlay"],
                "Authorization": None,
                "Log": ["json-file"],
            },
            "MemoryLimit": True,
            "SwapLimit": True,
            "KernelMemory": True,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "IPv4Forwarding": True,
            "BridgeNfIptables": True,
            "BridgeNfIp6tables": True,
            "OomKillDisable": True,
            "NCPU": m.ncpu,
            "MemTotal": m.memory_bytes,
            "Name": m.hostname,
            "ServerVersion": VERSION,
            "OSType": "linux",
            "Architecture": "x86_64",
            "KernelVersion": m.kernel,
            "OperatingSystem": "Shoal",
            "Labels": [],
            "ExperimentalBuild": False,
            "SecurityOptions": ["name=seccomp,profile=default"],
            "Warnings": [],
            "Swarm": swarm,
            "LiveRestoreEnabled": False,
            "Isolation": "",
            "InitBinary": "docker-init",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": "1",
        }
    )


def register(router: web.UrlDispatcher) -> None:
    add_route(router, "GET", "/_ping", ping)
    add_route(router, "HEAD", "/_ping", ping)
    add_route(router, "GET", "/version", version)
    add_route(router, "GET", "/info", system_info)
