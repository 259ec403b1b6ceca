"""The agent's side of its session with the managers (HTTPS with the node's
certificate, to the dispatcher): register, heartbeat, long-poll assignments,
report status. Any manager will do; on failure the next one in the list is
tried."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp

Obj = dict[str, Any]


class SessionError(ConnectionError):
    """No manager answered; the message says which were tried."""


@dataclass(frozen=True)
class Heartbeat:
    period: float  # seconds until the next one is due
    role: str  # the role the cluster wants this node in ("" if unknown)
    managers: list[str]  # the managers' API addresses now


@dataclass(frozen=True)
class Assignments:
    index: int
    tasks: list[Obj]
    secrets: list[Obj]  # only those this node's tasks use
    configs: list[Obj]
    volumes: list[Obj] = field(default_factory=list)  # Name, Driver, Options of those they mount


class ManagerSession:
    def __init__(self, managers: list[str], tls: ssl.SSLContext, timeout: float = 15.0) -> None:
        self.managers = list(managers)
        self.tls = tls  # the node's certificate; reloaded in place on renewal
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        errors = []
        for manager in list(self.managers):
            try:
                url = f"https://{manager}{path}"
                async with self._http.request(method, url, ssl=self.tls, **kw) as reply:
                    body = await reply.json(content_type=None)
                    if reply.status == 200:
                        # The manager that answered goes first next time.
                        self.managers.remove(manager)
                        self.managers.insert(0, manager)
                        return body
                    errors.append(f"{manager}: {(body or {}).get('message', reply.status)}")
                    if reply.status in (400, 401, 403):
                        break  # a refusal, not an outage: another manager says the same
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                errors.append(f"{manager}: {exc or type(exc).__name__}")
        raise SessionError("; ".join(errors) or "no managers configured")

    async def register(self, description: Obj, addr: str, api_addr: str = "") -> str:
        body = {"Description": description, "Addr": addr, "APIAddr": api_addr}
        answer = await self._call("POST", "/shoal/dispatcher/register", json=body)
        return str(answer["NodeID"])

    async def heartbeat(self, node_id: str) -> Heartbeat:
        answer = await self._call("POST", "/shoal/dispatcher/heartbeat", json={"NodeID": node_id})
        managers = [str(m) for m in answer.get("Managers") or []]
        if managers:
            self.follow(managers)
        return Heartbeat(
            float(answer.get("Period") or 5e9) / 1e9, str(answer.get("Role") or ""), managers
        )

    def follow(self, managers: list[str]) -> None:
        """The cluster's current managers; the one that answers last stays first."""
        kept = [m for m in self.managers if m in managers]
        self.managers = kept + [m for m in managers if m not in kept]

    async def assignments(self, node_id: str, index: int) -> Assignments:
        params = {"node": node_id, "index": str(index)}
        answer = await self._call("GET", "/shoal/dispatcher/assignments", params=params)
        return Assignments(
            int(answer["Index"]),
            list(answer["Tasks"]),
            list(answer.get("Secrets") or []),
            list(answer.get("Configs") or []),
            list(answer.get("Volumes") or []),
        )

    async def report(self, node_id: str, updates: list[Obj]) -> None:
        await self._call(
            "POST", "/shoal/dispatcher/status", json={"NodeID": node_id, "Updates": updates}
        )


async def retry_forever(what: str, call: Any, pause: float = 1.0) -> Any:
    """Keep trying a session call: managers come and go, the agent stays."""
    while True:
        try:
            return await call()
        except SessionError:
            await asyncio.sleep(pause)
