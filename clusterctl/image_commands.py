"""`clusterctl image build|push|pull|ls|rm`: images live on nodes, so these
talk to a node's agent (its API address is on the node object), over mutual
TLS with the context's admin certificate. As with Docker, the client does not
build: it sends the context, as a tar that honours .dockerignore."""

from __future__ import annotations

import asyncio
import io
import json
import ssl
import tarfile
from pathlib import Path
from typing import Any

import aiohttp
import click

from api.client import Unreachable
from api.dockerignore import DockerIgnore
from api.security import CertFiles, client_context
from clusterctl.cluster_commands import call
from clusterctl.contexts import Context, Contexts
from clusterctl.output import print_json, print_table

TIMEOUT = aiohttp.ClientTimeout(total=3600, sock_connect=10)


class ImageCommandError(click.ClickException):
    """A failed build, push or pull: the agent's one-line message."""


def ignored(relative: str, patterns: list[str]) -> bool:
    return DockerIgnore.parse("\n".join(patterns)).ignored(relative)


def context_tar(context: Path) -> bytes:
    ignore = DockerIgnore.load(context)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(context.rglob("*")):
            relative = path.relative_to(context).as_posix()
            keep = relative in (".dockerignore", "Dockerfile") or not ignore.ignored(relative)
            if keep and (path.is_file() or path.is_symlink() or path.is_dir()):
                tar.add(path, arcname=relative, recursive=False)
    return buffer.getvalue()


def pick_node(context: Context, wanted: str | None) -> dict[str, Any]:
    nodes = call(context, "GET", "/nodes")
    ready = [n for n in nodes if n.get("AgentAPI") and n["Status"]["State"] == "ready"]
    if wanted:
        for node in ready:
            if wanted in (node["ID"], node["Description"].get("Hostname")) or node["ID"].startswith(
                wanted
            ):
                return dict(node)
        raise click.ClickException(f"no ready node {wanted!r} with an agent API")
    if not ready:
        raise click.ClickException("no ready node serves an agent API")
    return dict(sorted(ready, key=lambda n: n["Description"].get("Hostname", ""))[0])


def _tls(context: Context) -> ssl.SSLContext:
    if not context.certs:
        raise click.ClickException(f"context {context.name!r} has no client certificate")
    return client_context(CertFiles(Path(context.certs)))


async def _agent(
    context: Context, node: dict[str, Any], method: str, path: str, **kw: Any
) -> tuple[int, list[dict[str, Any]] | Any]:
    """One call; streamed progress lines are printed as they come."""
    url = f"https://{node['AgentAPI']}{path}"
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            # The node's certificate names its ID, not its address.
            session.request(
                method, url, ssl=_tls(context), server_hostname=node["ID"], **kw
            ) as reply,
        ):
            if reply.headers.get("Content-Type", "").startswith("application/json") and (
                reply.status == 200 and method == "POST"
            ):
                async for raw in reply.content:
                    line = raw.strip()
                    if not line:
                        continue
                    message = json.loads(line)
                    if "error" in message:
                        raise ImageCommandError(str(message["error"]))
                    if "stream" in message:
                        click.echo(str(message["stream"]), nl=False)
                    elif "status" in message:
                        click.echo(str(message["status"]))
                return reply.status, None
            body = await reply.json(content_type=None)
            if reply.status >= 400:
                raise ImageCommandError(str((body or {}).get("message") or reply.status))
            return reply.status, body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unreachable(f"cannot reach the agent at {node['AgentAPI']}: {exc}") from None


def _target(
    context_name: str | None, manager: str | None, node: str | None
) -> tuple[Context, dict[str, Any]]:
    context = Contexts().resolve(context_name, manager)
    return context, pick_node(context, node)


@click.group("image")
def image_group() -> None:
    """Images on the cluster's nodes: build, push, pull, list, remove."""


NODE = click.option("--node", default=None, help="Node (hostname or ID) to work on.")
CONTEXT = click.option("--context", "context_name", default=None, help="Context to use.")
MANAGER = click.option(
    "--manager",
    default=None,
    help="host:port or unix:///path of a manager (overrides the context's).",
)


@image_group.command("build")
@click.option("-t", "--tag", required=True, help="Name of the image, NAME[:TAG].")
@click.option("-f", "--file", "dockerfile", default="Dockerfile", show_default=True)
@click.option("--build-arg", "build_args", multiple=True, help="K=V (repeat).")
@NODE
@CONTEXT
@MANAGER
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def build_command(
    tag: str,
    dockerfile: str,
    build_args: tuple[str, ...],
    node: str | None,
    context_name: str | None,
    manager: str | None,
    path: Path,
) -> None:
    """Build an image on a node from a Dockerfile and a context directory.

    \b
    Example:
      clusterctl image build -t 198.18.0.11:5000/demo/web:1 examples/web
    """
    args = {}
    for item in build_args:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: want K=V", param_hint="--build-arg")
        args[key] = value
    context, target = _target(context_name, manager, node)
    click.echo(f"Sending build context to {target['Description'].get('Hostname')}")
    params = {"t": tag, "dockerfile": dockerfile, "buildargs": json.dumps(args)}
    body = context_tar(path)
    asyncio.run(_agent(context, target, "POST", "/build", params=params, data=body))


@image_group.command("push")
@NODE
@CONTEXT
@MANAGER
@click.argument("name")
def push_command(
    node: str | None, context_name: str | None, manager: str | None, name: str
) -> None:
    """Push an image from a node to its registry.

    \b
    Example:
      clusterctl image push 198.18.0.11:5000/demo/web:1
    """
    context, target = _target(context_name, manager, node)
    asyncio.run(_agent(context, target, "POST", f"/images/{name}/push"))


@image_group.command("pull")
@NODE
@CONTEXT
@MANAGER
@click.argument("name")
def pull_command(
    node: str | None, context_name: str | None, manager: str | None, name: str
) -> None:
    """Pull an image onto a node.

    \b
    Example:
      clusterctl image pull --node demo-h2 198.18.0.11:5000/demo/web:1
    """
    context, target = _target(context_name, manager, node)
    asyncio.run(_agent(context, target, "POST", "/images/create", params={"fromImage": name}))


@image_group.command("ls")
@NODE
@CONTEXT
@MANAGER
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def ls_command(
    node: str | None, context_name: str | None, manager: str | None, output_format: str
) -> None:
    """List a node's images.

    \b
    Example:
      clusterctl image ls --node demo-h2
    """
    context, target = _target(context_name, manager, node)
    _, images = asyncio.run(_agent(context, target, "GET", "/images/json"))
    if output_format == "json":
        print_json(images)
        return
    rows = []
    for image in images:
        repository, _, tag = image["RepoTags"][0].rpartition(":")
        digest = str(image["RepoDigests"][0]).rsplit("@", 1)[-1]
        rows.append([repository, tag, digest.removeprefix("sha256:")[:12], image["Size"]])
    print_table(["repository", "tag", "digest", "size"], rows)


@image_group.command("rm")
@NODE
@CONTEXT
@MANAGER
@click.argument("name")
def rm_command(node: str | None, context_name: str | None, manager: str | None, name: str) -> None:
    """Remove an image from a node.

    \b
    Example:
      clusterctl image rm --node demo-h2 demo/web:1
    """
    context, target = _target(context_name, manager, node)
    asyncio.run(_agent(context, target, "DELETE", f"/images/{name}"))
    click.echo(f"Untagged: {name}")
