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
