"""The agent's side of netd (unix socket on the same host): a task's
container gets its network namespace (overlay links, gateway bridge) and
resolv.conf before it is created, and gives them back once removed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from api.addresses import mac_for

Obj = dict[str, Any]


class NetworkError(RuntimeError):
    """netd could not attach the task; the message says why."""


@dataclass(frozen=True)
class Attached:
    netns: str
    resolv_conf: Path


class Networks(Protocol):
    async def attach(self, task: Obj) -> Attached: ...

    async def detach(self, task_id: str) -> None: ...


def wanted_links(task: Obj) -> list[dict[str, str]]:
    links = []
    for attachment in task.get("NetworksAttachments") or []:
        addresses = attachment.get("Addresses") or []
        if not addresses:
            continue
        address = str(addresses[0])
        links.append(
            {
                "NetworkID": str((attachment.get("Network") or {}).get("ID") or ""),
                "Address": address,
                "MAC": mac_for(address.split("/", 1)[0]),
            }
        )
    return links


class NetdClient:
    def __init__(self, socket_path: Path, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _post(self, path: str, body: Obj) -> Obj:
        connector = aiohttp.UnixConnector(path=str(self.socket_path))
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=self.timeout) as session,
                session.post(f"http://netd{path}", json=body) as reply,
            ):
                answer = await reply.json(content_type=None)
                if reply.status != 200:
                    raise NetworkError(str((answer or {}).get("message") or reply.status))
                return dict(answer)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise NetworkError(f"netd at {self.socket_path}: {exc or type(exc).__name__}") from None

    async def attach(self, task: Obj) -> Attached:
        answer = await self._post(
            "/attach", {"TaskID": task["ID"], "Attachments": wanted_links(task)}
        )
        return Attached(str(answer["Netns"]), Path(str(answer["ResolvConf"])))

    async def detach(self, task_id: str) -> None:
        await self._post("/detach", {"TaskID": task_id})
