"""Image references parse and normalize the way docker names images."""

from __future__ import annotations

import pytest

from runtime.reference import ImageReference, InvalidReference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("library/busybox", "docker.io", "library/busybox", "latest", None),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("grafana/loki:2.9", "docker.io", "grafana/loki", "2.9", None),
        ("198.18.0.11:5000/app", "198.18.0.11:5000", "app", "latest", None),
        ("localhost:5000/team/app:v1", "localhost:5000", "team/app", "v1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("ghcr.io/org/sub/app:x_Y-1.2", "ghcr.io", "org/sub/app", "x_Y-1.2", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        (f"busybox@{DIGEST}", "docker.io", "library/busybox", None, DIGEST),
        (f"reg.example:443/a/b:t@{DIGEST}", "reg.example:443", "a/b", "t", DIGEST),
        ("a.b-c--d/f", "a.b-c--d", "f", "latest", None),
        ("my_repo/sub.part__x-y", "docker.io", "my_repo/sub.part__x-y", "latest", None),
        ("team/my--app", "docker.io", "team/my--app", "latest", None),
        # Without a slash the first component is the repository, as in docker.
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
    ],
)
def test_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert parse_reference(text) == ImageReference(registry, repository, tag, digest)


def test_a_lowercase_first_component_without_dot_or_colon_is_a_path() -> None:
    # "team" is neither a hostname with a dot nor a port nor localhost.
    ref = parse_reference("team/app")
    assert (ref.registry, ref.repository) == ("docker.io", "team/app")


def test_name_and_reference() -> None:
    plain = parse_reference("busybox")
    assert plain.name == "docker.io/library/busybox:latest"
    assert plain.reference == "latest"

    pinned = parse_reference(f"127.0.0.1:5000/app@{DIGEST}")
    assert pinned.name == f"127.0.0.1:5000/app@{DIGEST}"
    assert pinned.reference == DIGEST

    both = parse_reference(f"127.0.0.1:5000/app:v2@{DIGEST}")
    assert both.name == f"127.0.0.1:5000/app:v2@{DIGEST}"
    assert both.reference == DIGEST  # the digest pins the content, not the tag


def test_name_round_trips() -> None:
    for text in ["busybox:1", "localhost:5000/a/b", f"x.io/y@{DIGEST}", f"x.io/y:z@{DIGEST}"]:
        ref = parse_reference(text)
        assert parse_reference(ref.name) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "@",
        "/",
        "busybox:",
        "busybox@",
        ":latest",
        "Busybox",
        "docker.io/Library/busybox",
        "busybox:-bad",
        "busybox:.bad",
        "busybox:" + "t" * 129,
        "busybox:t@g",
        "busybox@sha256:abc",
        "busybox@sha256:" + "AB" * 32,
        "busybox@md5:" + "ab" * 16,
        f"busybox@{DIGEST}@{DIGEST}",
        "localhost:5000/",
        "localhost:5000//app",
        "app/",
        "a..b/c",  # a registry whose hostname has an empty label
        "a.b_c/d",  # hostnames have no underscores
        "reg:port/app",  # a port must be digits
        "-reg.io/app",
        "a/_b",
        "a/b_",
        "a/b___c",
        "a/b..c",
        "bad space",
        "tab\tbed",
        "ünïcode",
        "busybox:ünï",
        "x.io/" + "a" * 260,
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert repr(text) in str(info.value)


def test_invalid_reference_is_a_value_error() -> None:
    # Callers validating user input catch ValueError generically.
    with pytest.raises(ValueError, match="BAD"):
        parse_reference("BAD")
