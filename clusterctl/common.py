"""What every clusterctl command shares: reaching a manager, the options that
choose it, the output options, and the small parsers for docker's flag forms."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlencode

import click

from api.client import ManagerClient, Unreachable
from api.errors import ApiError
from api.security import pem_cert_info, utcnow
from clusterctl.contexts import Context, ContextError, Contexts
from clusterctl.output import print_json

F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(r"(\d+)([hms])")


def parse_duration(text: str) -> int:
    """Go's duration as docker takes it (2160h, 90m, 1h30m) → nanoseconds."""
    parts = _DURATION.findall(text)
    if not re.fullmatch(r"(\d+[hms])+", text):
        raise click.BadParameter(f"invalid duration {text!r}: use e.g. 2160h or 90m")
    seconds = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * seconds[u] for n, u in parts) * 1_000_000_000


def call(context: Context, method: str, path: str, body: Any = None) -> Any:
    """One request to the context's manager; errors come back as ApiError or
    Unreachable, whose message is the one line the user sees."""
    try:
        return asyncio.run(ManagerClient(context.endpoint()).request(method, path, body))
    except ssl.SSLError as exc:  # a certificate file that is not one, or not the key's pair
        reason = exc.reason or exc.strerror or str(exc)
        raise Unreachable(
            f"cannot use the client certificate in {context.certs}: {reason}"
        ) from None
    except Unreachable as exc:
        expired = expired_certificate(context)
        if expired:  # the likeliest reason the manager hung up on us: say so
            raise Unreachable(f"{exc} (the client certificate {expired})") from None
        raise


def expired_certificate(context: Context) -> str:
    """`in DIR expired at …` when the context's certificate is out of date, else ''."""
    if context.manager.startswith("unix://") or not context.certs:
        return ""
    try:
        info = pem_cert_info((Path(context.certs) / "cert.pem").read_bytes())
    except (OSError, ValueError):
        return ""
    if not info.expired(utcnow()):
        return ""
    return f"in {context.certs} expired at {info.not_after:%Y-%m-%d %H:%M:%S} UTC"


def api_path(*segments: str, **query: object) -> str:
    """`/nodes/<ref>/update?version=3`: each segment quoted, so a name with
    '/' or '?' stays one reference."""
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    params = {k: v for k, v in query.items() if v is not None}
    return f"{path}?{urlencode(params)}" if params else path


def filters_query(filters: dict[str, list[str]]) -> str | None:
    return json.dumps(filters) if filters else None


class Target:
    """The manager a command talks to, chosen by --context / --manager. The
    context is resolved on first use, so a bad flag is reported before a
    missing context is."""

    def __init__(self, context_name: str | None, manager: str | None) -> None:
        self._choice = (context_name, manager)
        self._context: Context | None = None

    @property
    def context(self) -> Context:
        if self._context is None:
            self._context = Contexts().resolve(*self._choice)
        return self._context

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return call(self.context, method, path, body)

    def get(self, *segments: str, **query: object) -> Any:
        return self.call("GET", api_path(*segments, **query))


def target_options(fn: F) -> F:
    """--context and --manager, handed to the command as `target`: a Target."""

    @functools.wraps(fn)
    def wrapper(*args: Any, context_name: str | None, manager: str | None, **kwargs: Any) -> Any:
        return fn(*args, target=Target(context_name, manager), **kwargs)

    with_manager = click.option(
        "--manager",
        default=None,
        help="host:port or unix:///path of a manager (overrides the context's).",
    )(wrapper)
    return cast(
        F,
        click.option("--context", "context_name", default=None, help="Context to use.")(
            with_manager
        ),
    )


format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON for scripts.",
)
inspect_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["json"]),
    default="json",
    show_default=True,
    help="Inspect output is always a JSON list (as docker's).",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Only print IDs.")
filter_option = click.option(
    "--filter",
    "-f",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Filter the list, as docker's --filter (repeat).",
)


def key_values(items: Iterable[str], flag: str, value_required: bool = True) -> dict[str, str]:
    """`--label k=v` (repeatable) into a dict; `k` alone means an empty value
    where docker allows it."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (value_required and not sep):
            raise click.BadParameter(f"{item!r}: want KEY=VALUE", param_hint=flag)
        result[key] = value
    return result


def filter_dict(items: Iterable[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise click.BadParameter(f"{item!r}: want KEY=VALUE", param_hint="--filter")
        result.setdefault(key, []).append(value)
    return result


def read_data(source: str) -> bytes:
    """A file's bytes, or stdin's with `-` (`secret create NAME -`)."""
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.is_file():
        raise click.BadParameter(f"{source!r} is not a file", param_hint="FILE")
    return path.read_bytes()


def for_each(
    refs: Iterable[str], action: Callable[[str], None], then: Callable[[], None] | None = None
) -> None:
    """Runs `action` on every reference as docker's multi-object commands do:
    one line per failure on stderr, the others still done, `then` (printing
    what was found), and exit status 1 if any failed."""
    failed = False
    for ref in refs:
        try:
            action(ref)
        except (ApiError, ContextError) as exc:
            click.echo(f"error: {exc}", err=True)
            failed = True
    if then is not None:
        then()
    if failed:
        raise click.exceptions.Exit(1)


def complete_names(collection: str) -> Callable[..., list[str]]:
    """Shell completion of object names from the manager (`clusterctl node
    update <TAB>`); nothing when it cannot be reached."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        try:
            target = Target(ctx.params.get("context_name"), ctx.params.get("manager"))
            found = target.get(collection)
        except Exception:  # completion must never print a traceback into the shell
            return []
        if collection == "volumes":
            found = found.get("Volumes") or []
        names = {name_of(obj) for obj in found}
        return sorted(n for n in names if n and n.startswith(incomplete))

    return complete


def name_of(obj: dict[str, Any]) -> str:
    description = obj.get("Description") or {}
    return str(
        description.get("Hostname") or obj.get("Name") or (obj.get("Spec") or {}).get("Name") or ""
    )


def inspect_as_json(target: Target, kind: str, refs: Iterable[str]) -> None:
    """`X inspect A B ...`: the objects found, as one JSON list; one line per miss."""
    found: list[Any] = []
    for_each(refs, lambda ref: found.append(target.get(kind, ref)), lambda: print_json(found))
