"""Managers in a lab: shoal-manager on the first M hosts as one cluster. The
first inits the swarm through its unix socket and writes the lab's admin
client certificate; the others join with the manager token. From then on the
lab speaks to managers over mutual TLS, as any client does."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from api.enroll import EnrollError, from_local_manager
from api.security import CertFiles, client_context
from lab.configs import (
    agent_service,
    load_services,
    manager_address,
    manager_service,
    manager_socket,
    netd_service,
    save_services,
    volumed_service,
)
from lab.spec import LabSpec
from lab.supervisor import PIDFILE

READY_SECONDS = 60.0


class ManagersNotReady(RuntimeError):
    pass


def _add_services(spec: LabSpec, services: list[Any]) -> None:
    known = load_services(spec.directory)
    names = {s.name for s in known}
    save_services(spec.directory, known + [s for s in services if s.name not in names])
    pid = int((spec.directory / PIDFILE).read_text())
    os.kill(pid, signal.SIGHUP)  # the supervisor starts what is new


async def _request(
    method: str, url: str, tls: ssl.SSLContext | None = None, **kw: Any
) -> tuple[int, Any]:
    """`url` is https://host:port/... (with the lab's client certificate) or
    unix:/path/to/socket:/path for a manager's local socket."""
    timeout = aiohttp.ClientTimeout(total=5)
    connector = None
    if url.startswith("unix:"):
        socket_path, _, path = url.removeprefix("unix:").partition(":")
        connector = aiohttp.UnixConnector(path=socket_path)
        url = f"http://manager{path}"
    async with (
        aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
        session.request(method, url, ssl=tls if tls is not None else True, **kw) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


def lab_tls(spec: LabSpec) -> ssl.SSLContext:
    return client_context(CertFiles(spec.client_certs))


async def _wait(what: str, check: Callable[[], Any], deadline: float) -> Any:
    last = ""
    while time.monotonic() < deadline:
        try:
            result = await check()
            if result:
                return result
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            last = str(exc)
        await asyncio.sleep(0.2)
    raise ManagersNotReady(f"{what} within {READY_SECONDS:.0f}s {last}".strip())


async def start_managers(spec: LabSpec, count: int, progress: Callable[[str], None]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    first = spec.host(1)
    local = f"unix:{manager_socket(first)}:"
    _add_services(spec, [manager_service(spec, first, None)])

    async def answers() -> bool:
        status, _ = await _request("GET", f"{local}/info")
        return status == 200

    await _wait(f"the manager on {first.name} did not answer", answers, deadline)
    status, body = await _request(
        "POST", f"{local}/swarm/init", json={"AdvertiseAddr": manager_address(first)}
    )
    if status != 200 and "already part of a swarm" not in str(body):
        raise ManagersNotReady(f"swarm init failed: {body}")
    try:
        admin = await from_local_manager(str(manager_socket(first)), "/shoal/ca/admin")
    except EnrollError as exc:
        raise ManagersNotReady(f"no client certificate: {exc}") from None
    admin.save(CertFiles(spec.client_certs))
    tls = lab_tls(spec)
    api = f"https://{manager_address(first)}"
    _, swarm = await _request("GET", f"{local}/swarm")
    token = swarm["JoinTokens"]["Manager"]
    progress(f"manager on {first.name} is up; joining {count - 1} more")
    _add_services(
        spec,
        [
            manager_service(spec, spec.host(i), (manager_address(first), token))
            for i in range(2, count + 1)
        ],
    )

    async def all_joined() -> bool:
        status, nodes = await _request("GET", f"{api}/nodes", tls)
        managers = [n for n in nodes if (n.get("Spec") or {}).get("Role") == "manager"]
        leaders = [n for n in managers if (n.get("ManagerStatus") or {}).get("Leader")]
        if status != 200 or len(managers) != count or len(leaders) != 1:
            return False
        for i in range(2, count + 1):  # every manager's own API answers too
            code, _ = await _request("GET", f"https://{manager_address(spec.host(i))}/info", tls)
            if code != 200:
                return False
        return True

    await _wait(f"{count} managers did not form a cluster", all_joined, deadline)


async def start_agents(spec: LabSpec, managers: int, progress: Callable[[str], None]) -> None:
    """An agent on every host; on a manager's host it takes the manager's node
    ID, so each host is one node, as in swarm."""
    deadline = time.monotonic() + READY_SECONDS
    manager_hosts = [spec.host(i) for i in range(1, managers + 1)]
    addresses = [manager_address(h) for h in manager_hosts]
    api = f"https://{addresses[0]}"
    tls = lab_tls(spec)
    _, swarm = await _request("GET", f"{api}/swarm", tls)
    token = swarm["JoinTokens"]["Worker"]
    _add_services(
        spec,
        [netd_service(spec, h, addresses) for h in spec.all_hosts()]
        + [volumed_service(spec, h, manager_hosts) for h in spec.all_hosts()]
        + [agent_service(spec, h, addresses, token) for h in spec.all_hosts()],
    )
    progress(f"agents starting on {spec.hosts} hosts")

    async def all_ready() -> bool:
        status, nodes = await _request("GET", f"{api}/nodes", tls)
        ready = [n for n in nodes if n.get("Status", {}).get("State") == "ready"]
        agents = [n for n in nodes if n.get("Agent")]
        return status == 200 and len(nodes) == spec.hosts == len(ready) == len(agents)

    await _wait(f"{spec.hosts} agents did not register", all_ready, deadline)


def managers_up(spec: LabSpec, count: int, progress: Callable[[str], None]) -> None:
    async def both() -> None:
        await start_managers(spec, count, progress)
        await start_agents(spec, count, progress)

    asyncio.run(both())
