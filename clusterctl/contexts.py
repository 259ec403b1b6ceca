"""clusterctl contexts: named managers with the certificate to reach them,
like docker's. Stored as one JSON file each under ~/.config/clusterctl
($XDG_CONFIG_HOME, or $CLUSTERCTL_CONFIG for the directory itself); the name
of the one in use is in `current`."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from api.client import Endpoint

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class ContextError(ValueError):
    """A context that does not exist or cannot be written; one line for the user."""


@dataclass(frozen=True)
class Context:
    name: str
    manager: str  # host:port, or unix:///path/to/manager.sock
    certs: str = ""  # a directory with ca.pem, cert.pem, key.pem

    def endpoint(self) -> Endpoint:
        if self.manager.startswith("unix://"):
            return Endpoint(socket=Path(self.manager.removeprefix("unix://")))
        return Endpoint(tcp=self.manager, certs=Path(self.certs) if self.certs else None)


def config_dir() -> Path:
    explicit = os.environ.get("CLUSTERCTL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "clusterctl"


class Contexts:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ContextError(f"invalid context name {name!r}: letters, digits, '.', '_', '-'")
        return self.directory / "contexts" / f"{name}.json"

    def cert_dir(self, name: str) -> Path:
        """Where clusterctl keeps the certificates it copied for a context."""
        self._path(name)  # checks the name
        return self.directory / "certs" / name

    def copy_certs(self, name: str, ca: Path, cert: Path, key: Path) -> Path:
        """The three files into the context's own directory, as ca.pem,
        cert.pem and key.pem (the key readable by its owner only)."""
        for given in (ca, cert, key):
            if not given.is_file():
                raise ContextError(f"{given} is not a file")
        directory = self.cert_dir(name)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for source, target, mode in (
            (ca, "ca.pem", 0o644),
            (cert, "cert.pem", 0o644),
            (key, "key.pem", 0o600),
        ):
            tmp = directory / (target + ".tmp")
            shutil.copyfile(source, tmp)
            tmp.chmod(mode)
            tmp.replace(directory / target)
        return directory

    def save(self, context: Context) -> None:
        path = self._path(context.name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(context), indent=2))
        tmp.replace(path)

    def get(self, name: str) -> Context:
        path = self._path(name)
        if not path.exists():
            raise ContextError(f"context {name!r} does not exist (see: clusterctl context ls)")
        try:
            data = json.loads(path.read_text())
            return Context(str(data["name"]), str(data["manager"]), str(data.get("certs") or ""))
        except (ValueError, KeyError, TypeError):
            raise ContextError(f"context {name!r} is damaged: {path}") from None

    def all(self) -> list[Context]:
        folder = self.directory / "contexts"
        names = sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []
        return [self.get(name) for name in names]

    def remove(self, name: str) -> None:
        context = self.get(name)
        self._path(name).unlink()
        own = self.cert_dir(name)
        if context.certs and Path(context.certs) == own:  # copied by us: ours to remove
            shutil.rmtree(own, ignore_errors=True)
        if self.current_name() == name:
            (self.directory / "current").unlink(missing_ok=True)

    def use(self, name: str) -> None:
        self.get(name)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.directory / "current").write_text(name)

    def current_name(self) -> str | None:
        current = self.directory / "current"
        return current.read_text().strip() or None if current.exists() else None

    def resolve(self, name: str | None, manager: str | None) -> Context:
        """--manager (or $CLUSTERCTL_MANAGER), else --context / $CLUSTERCTL_CONTEXT,
        else the one in use."""
        chosen = name or os.environ.get("CLUSTERCTL_CONTEXT") or self.current_name()
        manager = manager or os.environ.get("CLUSTERCTL_MANAGER") or None
        if manager:  # another manager of the same cluster: the context's certificate
            certs = self.get(chosen).certs if chosen else ""
            return Context("(--manager)", manager, certs)
        if not chosen:
            raise ContextError(
                "no context: run `clusterctl cluster init`, `clusterctl lab up`, or "
                "`clusterctl context create`"
            )
        return self.get(chosen)
