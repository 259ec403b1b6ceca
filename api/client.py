"""The async client of the manager API: over TCP with mutual TLS (the
cluster's CA, a client certificate), or through a manager's unix socket on the
same host. Error replies come back as the matching `ApiError`."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from api.errors import error_for_status
from api.security import CertFiles, client_context


class Unreachable(ConnectionError):
    """No answer from the manager (down, wrong address, or TLS refused)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a manager's API is: `tcp` (host:port) with `certs`, or `socket`."""

    tcp: str = ""
    certs: Path | None = None
    socket: Path | None = None

    def describe(self) -> str:
        return f"unix://{self.socket}" if self.socket else f"tcp://{self.tcp}"


class ManagerClient:
    def __init__(self, endpoint: Endpoint, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def _tls(self) -> ssl.SSLContext:
        if self.endpoint.certs is None:
            raise Unreachable(f"no client certificate to reach {self.endpoint.describe()} with")
        files = CertFiles(self.endpoint.certs)
        if not files.complete():
            raise Unreachable(f"{files.directory} does not hold ca.pem, cert.pem and key.pem")
        return client_context(files)

    def _session(self, timeout: aiohttp.ClientTimeout) -> tuple[aiohttp.ClientSession, str]:
        if self.endpoint.socket is not None:
            connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=str(self.endpoint.socket))
            base = "http://manager"
        else:
            connector = aiohttp.TCPConnector(ssl=self._tls())
            base = f"https://{self.endpoint.tcp}"
        return aiohttp.ClientSession(connector=connector, timeout=timeout), base

    def _unreachable(self, exc: BaseException) -> Unreachable:
        reason = str(exc) or type(exc).__name__
        return Unreachable(f"cannot reach the manager at {self.endpoint.describe()}: {reason}")

    @staticmethod
    async def _raise_for(reply: aiohttp.ClientResponse) -> Any:
        text = await reply.text()
        answer = await reply.json(content_type=None) if text.strip() else None
        if reply.status >= 400:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise error_for_status(reply.status, str(message or text or reply.status))
        return answer

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        session, base = self._session(self.timeout)
        try:
            async with session, session.request(method, base + path, json=body) as reply:
                return await self._raise_for(reply)
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            raise self._unreachable(exc) from None

    async def stream(self, path: str, params: dict[str, str]) -> AsyncIterator[bytes]:
        """A GET whose answer streams (logs, events): its bytes as they come,
        with no overall time limit."""
        session, base = self._session(aiohttp.ClientTimeout(total=None, sock_connect=30))
        try:
            async with session, session.get(base + path, params=params) as reply:
                if reply.status >= 400:
                    await self._raise_for(reply)
                async for chunk in reply.content.iter_any():
                    yield chunk
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            raise self._unreachable(exc) from None
