"""Secrets at rest: sealed under the cluster key, bound to their object."""

from __future__ import annotations

import base64

import pytest

from manager.secret_box import SealError, SecretBox


def test_a_sealed_value_opens_with_the_same_cluster_key_only() -> None:
    box = SecretBox("cluster-key-1")
    sealed = box.seal(b"hunter2", "secret-a")
    assert b"hunter2" not in sealed.encode()
    assert base64.b64encode(b"hunter2").decode().rstrip("=") not in sealed
    assert SecretBox("cluster-key-1").open(sealed, "secret-a") == b"hunter2"
    with pytest.raises(SealError):
        SecretBox("cluster-key-2").open(sealed, "secret-a")


def test_a_sealed_value_is_bound_to_its_secret_and_never_repeats() -> None:
    box = SecretBox("k")
    sealed = box.seal(b"x", "secret-a")
    assert box.seal(b"x", "secret-a") != sealed  # a fresh nonce each time
    with pytest.raises(SealError):
        box.open(sealed, "secret-b")  # copied onto another secret: refused
    with pytest.raises(SealError):
        box.open("plain", "secret-a")
    with pytest.raises(SealError):
        box.open(sealed[:-4] + "AAAA", "secret-a")  # tampered
