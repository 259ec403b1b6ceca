"""The cluster's root CA: created by the first manager, kept in the store
(replicated to every manager, never shown by the API), and used by any
manager to sign node and admin certificates. Pure functions over PEM bytes;
the clock is an argument."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.security import MANAGER_SERVER_NAME, ROLE_UNITS, ca_digest, key_pem, new_private_key

ROOT_LIFETIME = timedelta(days=20 * 365)  # swarm's root CA lives 20 years
BACKDATE = timedelta(minutes=5)  # tolerate clocks a little behind ours


class CSRError(ValueError):
    """A certificate request that cannot be read or is not self-signed."""


@dataclass(frozen=True)
class RootCA:
    cert_pem: bytes
    key_pem: bytes

    @property
    def digest(self) -> str:
        return ca_digest(self.cert_pem)

    def to_store(self) -> dict[str, str]:
        return {"CACert": self.cert_pem.decode(), "CAKey": self.key_pem.decode()}

    @classmethod
    def from_store(cls, stored: dict[str, str]) -> RootCA:
        return cls(stored["CACert"].encode(), stored["CAKey"].encode())


def new_root_ca(now: datetime) -> RootCA:
    key = new_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return RootCA(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))


def read_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise CSRError("the certificate request is not a PEM CSR") from None
    if not csr.is_signature_valid:
        raise CSRError("the certificate request is not signed by its own key")
    return csr


def _san(role: str, node_id: str, addresses: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(node_id)]
    if role == "manager":
        names.append(x509.DNSName(MANAGER_SERVER_NAME))
        names.append(x509.DNSName("localhost"))
        for address in {*addresses, "127.0.0.1"}:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(address)))
            except ValueError:
                names.append(x509.DNSName(address))
    return x509.SubjectAlternativeName(names)


def sign(
    ca: RootCA,
    csr_pem: bytes,
    *,
    node_id: str,
    role: str,
    cluster_id: str,
    lifetime: timedelta,
    now: datetime,
    addresses: tuple[str, ...] = (),
) -> bytes:
    """A certificate for the CSR's key naming the node, its role and the
    cluster. A manager's also names its addresses, so clients that check the
    server's name (the docker CLI, agents) accept it as a server."""
    if role not in ROLE_UNITS:
        raise ValueError(f"unknown role {role!r}")
    csr = read_csr(csr_pem)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ROLE_UNITS[role]),
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
        ]
    )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(_san(role, node_id, addresses), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
