"""A manager's own certificate: it serves the API with it and presents it to
the other managers. A manager holds the CA key (in the store), so it signs its
own: once the cluster exists, whenever it has none, whenever 60% of its
lifetime has passed, and when its node's role changed. Both TLS contexts are
reloaded in place, so connections opened later use the new certificate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import timedelta

from api.security import (
    CertFiles,
    client_context,
    new_key_and_csr,
    renewal_due,
    server_context,
    utcnow,
)
from manager.ca import RootCA, sign
from manager.store.store import ReadTx, Store

log = logging.getLogger("shoal.manager.certificates")
CHECK_SECONDS = 5.0


class ManagerCertificates:
    def __init__(self, files: CertFiles, node_id: Callable[[], str], advertise_host: str) -> None:
        self.files = files
        self.node_id = node_id
        self.advertise_host = advertise_host
        self.server: ssl.SSLContext | None = None
        self.client: ssl.SSLContext | None = None

    def load(self) -> bool:
        """Take up the certificate on disk (again); False when there is none."""
        if not self.files.complete():
            return False
        if self.server is None or self.client is None:
            self.server = server_context(self.files)
            self.client = client_context(self.files)
        else:
            for context in (self.server, self.client):
                context.load_cert_chain(str(self.files.cert), str(self.files.key))
        return True

    def client_tls(self) -> ssl.SSLContext | None:
        return self.client

    def _wanted(self, store: Store) -> tuple[RootCA, str, str, timedelta] | None:
        def read(tx: ReadTx) -> tuple[RootCA, str, str, timedelta] | None:
            clusters = tx.all("cluster")
            if not clusters or "RootCA" not in clusters[0]:
                return None
            cluster = clusters[0]
            node = tx.get("node", self.node_id())
            role = str(((node or {}).get("Spec") or {}).get("Role") or "manager")
            nanos = int(cluster["Spec"].get("CAConfig", {}).get("NodeCertExpiry") or 0)
            lifetime = timedelta(microseconds=nanos // 1000) if nanos else timedelta(hours=2160)
            return RootCA.from_store(cluster["RootCA"]), str(cluster["ID"]), role, lifetime

        return store.view(read)

    def refresh(self, store: Store) -> bool:
        """Sign a new certificate if one is due; True when the files changed."""
        wanted = self._wanted(store)
        if wanted is None:
            return False
        ca, cluster_id, role, lifetime = wanted
        if self.files.complete():
            info = self.files.info()
            current_ca = self.files.ca.read_bytes() == ca.cert_pem
            if (
                current_ca
                and info.node_id == self.node_id()
                and not renewal_due(info, utcnow(), role)
            ):
                return False
        key_pem, csr_pem = new_key_and_csr()
        cert = sign(
            ca,
            csr_pem,
            node_id=self.node_id(),
            role=role,
            cluster_id=cluster_id,
            lifetime=lifetime,
            now=utcnow(),
            addresses=(self.advertise_host,),
        )
        self.files.save(ca.cert_pem, cert, key_pem)
        log.info("signed this manager's certificate (role %s)", role)
        return True

    async def keep_fresh(self, store: Store, on_ready: Callable[[], Awaitable[None]]) -> None:
        """The loop a running manager keeps: certificate due → signed, loaded,
        and the TLS listener opened if it was not yet."""
        while True:
            with contextlib.suppress(ValueError, OSError):
                if (self.refresh(store) or self.server is None) and self.load():
                    await on_ready()
            await asyncio.sleep(CHECK_SECONDS)
