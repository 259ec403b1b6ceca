"""clusterctl contexts: stored, chosen, overridden and removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.client import Endpoint
from clusterctl.contexts import Context, ContextError, Contexts


def test_contexts_are_saved_used_resolved_and_removed(tmp_path: Path) -> None:
    contexts = Contexts(tmp_path)
    with pytest.raises(ContextError, match="no context"):
        contexts.resolve(None, None)
    contexts.save(Context("prod", "10.0.0.1:2377", "/certs/prod"))
    contexts.save(Context("local", "unix:///run/manager.sock"))
    contexts.use("prod")
    assert contexts.resolve(None, None).manager == "10.0.0.1:2377"
    assert contexts.resolve("local", None).endpoint() == Endpoint(socket=Path("/run/manager.sock"))
    # --manager reaches another manager with the chosen context's certificate.
    other = contexts.resolve(None, "10.0.0.2:2377")
    assert other.endpoint() == Endpoint(tcp="10.0.0.2:2377", certs=Path("/certs/prod"))
    assert [c.name for c in contexts.all()] == ["local", "prod"]
    contexts.remove("prod")
    assert contexts.current_name() is None
    with pytest.raises(ContextError, match="does not exist"):
        contexts.use("prod")
    with pytest.raises(ContextError, match="invalid context name"):
        contexts.save(Context("../escape", "x:1"))


def test_certificates_are_copied_into_the_context_and_removed_with_it(tmp_path: Path) -> None:
    given = tmp_path / "given"
    given.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (given / name).write_text(name)
    contexts = Contexts(tmp_path / "config")
    copied = contexts.copy_certs("prod", given / "ca.pem", given / "cert.pem", given / "key.pem")
    assert copied == tmp_path / "config" / "certs" / "prod"
    assert (copied / "key.pem").read_text() == "key.pem"
    assert (copied / "key.pem").stat().st_mode & 0o777 == 0o600
    contexts.save(Context("prod", "10.0.0.1:2377", str(copied)))
    # A directory the user named stays; the copies clusterctl made go with the context.
    contexts.save(Context("theirs", "10.0.0.1:2377", str(given)))
    contexts.remove("theirs")
    assert given.exists()
    contexts.remove("prod")
    assert not copied.exists()
    with pytest.raises(ContextError, match="is not a file"):
        contexts.copy_certs("x", given, given / "cert.pem", given / "key.pem")
