"""The async client of the manager API: over TCP with mutual TLS (the
cluster's CA, a client certificate), or through a manager's unix socket on the
same host. Error replies come back as the matching `ApiError`."""

from __future__ import annotations

import ssl
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

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        if self.endpoint.socket is not None:
            connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=str(self.endpoint.socket))
            url = f"http://manager{path}"
        else:
            connector = aiohttp.TCPConnector(ssl=self._tls())
            url = f"https://{self.endpoint.tcp}{path}"
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=self.timeout) as session,
                session.request(method, url, json=body) as reply,
            ):
                text = await reply.text()
                answer = await reply.json(content_type=None) if text.strip() else None
                if reply.status >= 400:
                    message = answer.get("message") if isinstance(answer, dict) else None
                    raise error_for_status(reply.status, str(message or text or reply.status))
                return answer
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            reason = str(exc) or type(exc).__name__
            where = self.endpoint.describe()
            raise Unreachable(f"cannot reach the manager at {where}: {reason}") from None
