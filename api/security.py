"""What every party of the cluster's TLS shares (DESIGN.md §6): join tokens
and the CA digest they pin, node keys and certificate requests, reading who a
certificate names, certificate files on disk, and TLS contexts.

Signing lives with the CA in the manager; nodes and clients only need this.

A node certificate's subject names the node (CN = node ID), its role
(OU = swarm-manager | swarm-worker | swarm-admin) and the cluster (O).
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROLE_UNITS = {"manager": "swarm-manager", "worker": "swarm-worker", "admin": "swarm-admin"}
UNIT_ROLES = {unit: role for role, unit in ROLE_UNITS.items()}
# Managers' certificates carry this name, so a node checks it reached a manager
# (swarm does the same); the docker CLI checks the manager's IP instead.
MANAGER_SERVER_NAME = "swarm-manager"
_BASE36 = string.digits + string.ascii_lowercase
_TOKEN = re.compile(r"^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$")


class TokenError(ValueError):
    """A join token that is not `SWMTKN-1-<50 base36>-<25 base36>`."""


@dataclass(frozen=True)
class JoinToken:
    ca_digest: str
    secret: str

    def __str__(self) -> str:
        return f"SWMTKN-1-{self.ca_digest}-{self.secret}"


def parse_join_token(token: str) -> JoinToken:
    match = _TOKEN.match(token.strip())
    if match is None:
        raise TokenError("invalid join token: want SWMTKN-1-<CA digest>-<secret>")
    return JoinToken(match.group(1), match.group(2))


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_BASE36[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def new_token_secret() -> str:
    return _base36(int.from_bytes(os.urandom(16)), 25)[-25:]


def ca_digest(ca_pem: bytes) -> str:
    """The CA's fingerprint as a join token carries it: SHA-256 of its DER, in base36."""
    der = x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)
    return _base36(int.from_bytes(hashlib.sha256(der).digest()), 50)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_key_and_csr() -> tuple[bytes, bytes]:
    """A fresh key and a request for it; the CA decides every name in the certificate."""
    key = new_private_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    return key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CertInfo:
    node_id: str
    role: str  # manager | worker | admin | "" (not one of ours)
    cluster_id: str
    not_before: datetime
    not_after: datetime

    def expired(self, now: datetime) -> bool:
        return not self.not_before <= now < self.not_after


def _name(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def cert_info(cert: x509.Certificate) -> CertInfo:
    return CertInfo(
        node_id=_name(cert, NameOID.COMMON_NAME),
        role=UNIT_ROLES.get(_name(cert, NameOID.ORGANIZATIONAL_UNIT_NAME), ""),
        cluster_id=_name(cert, NameOID.ORGANIZATION_NAME),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def pem_cert_info(pem: bytes) -> CertInfo:
    return cert_info(x509.load_pem_x509_certificate(pem))


def der_cert_info(der: bytes) -> CertInfo:
    return cert_info(x509.load_der_x509_certificate(der))


def renewal_due(info: CertInfo, now: datetime, wanted_role: str | None = None) -> bool:
    """Renew once 60% of the lifetime has passed (swarm renews between 50% and
    80%), at once when the role the cluster wants differs from the certificate's."""
    if wanted_role and wanted_role != info.role:
        return True
    lifetime = info.not_after - info.not_before
    return now >= info.not_before + lifetime * 0.6


def renewal_wait(info: CertInfo, now: datetime) -> timedelta:
    lifetime = info.not_after - info.not_before
    return max(info.not_before + lifetime * 0.6 - now, timedelta(0))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CertFiles:
    """A directory holding ca.pem, cert.pem and key.pem (the names the docker
    CLI looks for under DOCKER_CERT_PATH)."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    def complete(self) -> bool:
        return self.ca.exists() and self.cert.exists() and self.key.exists()

    def info(self) -> CertInfo:
        return pem_cert_info(self.cert.read_bytes())

    def save(self, ca_pem: bytes, cert_pem: bytes, key: bytes) -> None:
        """Each file is replaced whole. The key goes first: a reader that
        catches the new key with the old certificate fails to load the pair
        and tries again, and never sees a torn file."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, data, mode in (
            (self.ca, ca_pem, 0o644),
            (self.key, key, 0o600),
            (self.cert, cert_pem, 0o644),
        ):
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)

    def stamp(self) -> float:
        """Changes whenever the certificate is replaced (reload on change)."""
        return self.cert.stat().st_mtime if self.cert.exists() else 0.0


def server_context(files: CertFiles) -> ssl.SSLContext:
    """A manager's listener: a client certificate is optional at the TLS level
    (a joining node has none yet) but, when given, must chain to the cluster's
    CA and be valid now; the API then decides what each identity may do."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


def client_context(files: CertFiles, with_certificate: bool = True) -> ssl.SSLContext:
    """A node or client calling a manager: it trusts only the cluster's CA."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if with_certificate:
        context.load_cert_chain(str(files.cert), str(files.key))
    return context


def pinned_context(ca_pem: bytes) -> ssl.SSLContext:
    """Trust exactly this CA (a joining node, before it has a certificate)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def unverified_context() -> ssl.SSLContext:
    """Only for fetching the CA certificate a node then checks against the
    digest in its token: nothing it reads this way is trusted before that."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
