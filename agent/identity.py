"""The node's certificate: who this agent is to the managers.

At the first start the agent exchanges its join token for a certificate (or,
beside a manager, asks that manager's unix socket for its node's); later
starts reuse the one on disk. While it runs it renews the certificate before
60% of its lifetime has passed, and at once when the cluster wants the node in
another role (promote/demote)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from api.enroll import EnrollError, Refused, enroll_any, from_local_manager, renew
from api.security import CertFiles, client_context, renewal_due, utcnow

log = logging.getLogger("shoal.agent.identity")
RETRY_SECONDS = 1.0


class JoinRefused(RuntimeError):
    """The cluster said no (a wrong or rotated token): retrying will not help."""


@dataclass(frozen=True)
class JoinMethod:
    managers: tuple[str, ...]
    token: str = ""
    manager_socket: Path | None = None  # the manager on this host, if any
    advertise_addr: str = ""


class NodeIdentity:
    def __init__(self, directory: Path, method: JoinMethod) -> None:
        self.files = CertFiles(directory)
        self.method = method
        self.tls: ssl.SSLContext | None = None

    @property
    def node_id(self) -> str:
        return self.files.info().node_id

    def _usable(self) -> bool:
        if not self.files.complete():
            return False
        try:
            return not self.files.info().expired(utcnow())
        except ValueError:
            return False

    async def obtain(self) -> ssl.SSLContext:
        """The certificate on disk, or a new one; retried while no manager answers."""
        while not self._usable():
            try:
                await self._join()
            except Refused as exc:
                raise JoinRefused(str(exc)) from None
            except EnrollError as exc:
                log.warning("no certificate yet: %s", exc)
                await asyncio.sleep(RETRY_SECONDS)
        self.tls = client_context(self.files)
        return self.tls

    async def _join(self) -> None:
        method = self.method
        if method.manager_socket is not None:
            issued = await from_local_manager(str(method.manager_socket), "/shoal/ca/local")
        elif method.token:
            issued = await enroll_any(
                list(method.managers), method.token, addr=method.advertise_addr
            )
        else:
            raise Refused("no certificate, and no join token to get one with")
        issued.save(self.files)
        log.info("joined as node %s (%s)", issued.node_id, issued.role)

    async def renew_if_due(self, managers: list[str], wanted_role: str) -> bool:
        """True when a new certificate was taken up."""
        if self.tls is None or not renewal_due(self.files.info(), utcnow(), wanted_role):
            return False
        errors = []
        for manager in managers:
            try:
                issued = await renew(manager, self.files, self.method.advertise_addr)
            except EnrollError as exc:
                errors.append(str(exc))
                continue
            issued.save(self.files)
            self.tls.load_cert_chain(str(self.files.cert), str(self.files.key))
            log.info("renewed this node's certificate (role %s)", issued.role)
            return True
        log.warning("certificate renewal failed: %s", "; ".join(errors))
        return False
