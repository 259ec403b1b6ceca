"""Docker-style image references: "[registry/]repository[:tag][@digest]",
normalized the way docker and containerd name images ("busybox" is
"docker.io/library/busybox:latest")."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
# Docker's legacy hostname for Docker Hub; images pulled through it are the same
# images, so both spellings must normalize to one name.
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
# Docker caps the whole name (registry included) at 255 characters.
MAX_NAME_LENGTH = 255

# re.ASCII: \w must not accept non-ASCII letters, which no registry allows.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_HOST_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_REGISTRY = re.compile(
    rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?",
    re.ASCII,
)


class InvalidReference(ValueError):
    """An image reference that cannot name an image."""


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The canonical full name, the key images are stored under."""
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def reference(self) -> str:
        """What goes in the manifests URL: a digest pins content, so it wins."""
        if self.digest is not None:
            return self.digest
        # parse_reference never leaves both unset; a hand-built one falls back
        # to what docker would fetch.
        return self.tag if self.tag is not None else DEFAULT_TAG


def _is_registry(component: str) -> bool:
    # Docker's rule: "localhost/x" and "host.name/x" and "host:5000/x" are
    # registries, while "library/x" is a path on Docker Hub.
    return "." in component or ":" in component or component == "localhost"


def parse_reference(text: str) -> ImageReference:
    """Parse and normalize an image reference; InvalidReference if it is not one."""
    if not text:
        raise InvalidReference(f"invalid image reference {text!r}: empty")

    def invalid(why: str) -> InvalidReference:
        return InvalidReference(f"invalid image reference {text!r}: {why}")

    remainder, at, digest_text = text.partition("@")
    digest: str | None = None
    if at:
        if not _DIGEST.fullmatch(digest_text):
            raise invalid("digest must be sha256: followed by 64 lowercase hex digits")
        digest = digest_text

    # A tag's colon is the last one after the last slash; an earlier colon
    # belongs to the registry's port.
    tag: str | None = None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        tag = remainder[colon + 1 :]
        remainder = remainder[:colon]
        if not _TAG.fullmatch(tag):
            raise invalid("tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -")

    first, slash, rest = remainder.partition("/")
    if slash and _is_registry(first):
        registry, repository = first, rest
        if not _REGISTRY.fullmatch(registry):
            raise invalid(f"bad registry {registry!r}")
    else:
        registry, repository = DEFAULT_REGISTRY, remainder
    if registry == LEGACY_DEFAULT_REGISTRY:
        registry = DEFAULT_REGISTRY

    if not repository:
        raise invalid("no repository")
    for component in repository.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise invalid(
                f"repository component {component!r} must be lowercase letters and digits "
                "joined by '.', '_', '__' or '-'"
            )
    # Docker Hub's official images live under "library/"; the short name is
    # only a spelling of the same image.
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if len(registry) + 1 + len(repository) > MAX_NAME_LENGTH:
        raise invalid(f"name longer than {MAX_NAME_LENGTH} characters")

    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageReference(registry=registry, repository=repository, tag=tag, digest=digest)
