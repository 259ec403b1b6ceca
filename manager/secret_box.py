"""Secrets at rest: the store (and so the Raft log, its snapshots, or etcd)
holds a secret's value only sealed with AES-256-GCM, under a key derived from
the cluster key. In Raft mode that is the key the managers already share for
their Raft traffic: created at `init`, handed to a joining manager over mutual
TLS, kept in the manager's data directory (0600) and never in the log. With
the etcd store it is a key file every manager is given (or, alone, creates).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "aesgcm1:"  # the format's version, so a later one can be told apart
NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that this key cannot open (another cluster's, or damaged)."""


class SecretBox:
    def __init__(self, cluster_key: str) -> None:
        derive = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"shoal secrets at rest v1"
        )
        self._aead = AESGCM(derive.derive(cluster_key.encode()))

    def seal(self, data: bytes, object_id: str) -> str:
        """The value sealed for the store; bound to its object's ID, so a
        sealed value copied onto another secret does not open."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, data, object_id.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, object_id: str) -> bytes:
        if not sealed.startswith(PREFIX):
            raise SealError("not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], object_id.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SealError("the sealed value does not open with this cluster's key") from None
