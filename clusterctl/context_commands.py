"""`clusterctl context ...`: named managers, each with the certificate to
reach it (docker's contexts). `--context`, `--manager` and $CLUSTERCTL_CONTEXT
choose one per command; `context use` sets the default."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from api.security import CertFiles
from clusterctl.common import for_each
from clusterctl.contexts import Context, ContextError, Contexts
from clusterctl.output import print_json, print_table


def complete_contexts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [c.name for c in Contexts().all() if c.name.startswith(incomplete)]


existing_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("context")
def context_group() -> None:
    """Named managers, each with the certificate to reach it."""


@context_group.command("create")
@click.argument("name")
@click.option("--manager", required=True, help="host:port, or unix:///path/manager.sock")
@click.option("--ca", type=existing_file, default=None, help="The cluster's CA certificate.")
@click.option("--cert", type=existing_file, default=None, help="Your client certificate.")
@click.option("--key", type=existing_file, default=None, help="The key of --cert.")
@click.option(
    "--certs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Instead of the three: a directory with ca.pem, cert.pem and key.pem (used in place).",
)
@click.option("--use", "use_it", is_flag=True, help="Use the new context from now on.")
def context_create(
    name: str,
    manager: str,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    certs: Path | None,
    use_it: bool,
) -> None:
    """Create a context. --ca, --cert and --key are copied into the context's
    own directory (under ~/.config/clusterctl/certs); --certs is used in place.

    \b
    Example:
      clusterctl context create prod --manager 10.0.0.1:2377 \\
          --ca ca.pem --cert cert.pem --key key.pem
      clusterctl context create local --manager unix:///var/lib/shoal/manager/manager.sock
    """
    given = [f for f in (ca, cert, key) if f is not None]
    if given and certs is not None:
        raise click.UsageError("give either --ca/--cert/--key or --certs, not both")
    if given and len(given) != 3:
        raise click.UsageError("--ca, --cert and --key go together")
    if certs is not None and not CertFiles(certs).complete():
        raise click.BadParameter(
            f"{certs} does not hold ca.pem, cert.pem and key.pem", param_hint="--certs"
        )
    if not manager.startswith("unix://") and ":" not in manager:
        raise click.BadParameter(
            f"{manager!r}: want host:port or unix:///path", param_hint="--manager"
        )
    contexts = Contexts()
    if any(c.name == name for c in contexts.all()):
        raise ContextError(f"context {name!r} already exists (remove it first)")
    directory = ""
    if ca is not None and cert is not None and key is not None:
        directory = str(contexts.copy_certs(name, ca, cert, key))
    elif certs is not None:
        directory = str(certs.resolve())
    contexts.save(Context(name, manager, directory))
    if use_it:
        contexts.use(name)
    click.echo(name)


@context_group.command("use")
@click.argument("name", shell_complete=complete_contexts)
def context_use(name: str) -> None:
    """Use a context from now on.

    \b
    Example:
      clusterctl context use prod
    """
    Contexts().use(name)
    click.echo(f"Current context is now {name!r}")


@context_group.command("ls")
@click.option("--quiet", "-q", is_flag=True, help="Only print names.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def context_ls(quiet: bool, output_format: str) -> None:
    """List contexts; `*` marks the one in use.

    \b
    Example:
      clusterctl context ls
    """
    contexts = Contexts()
    current = contexts.current_name()
    every = contexts.all()
    if output_format == "json":
        print_json([dict(asdict(c), current=c.name == current) for c in every])
        return
    if quiet:
        for context in every:
            click.echo(context.name)
        return
    rows = [[c.name + (" *" if c.name == current else ""), c.manager, c.certs] for c in every]
    print_table(["name", "manager", "certificates"], rows)


@context_group.command("inspect")
@click.argument("names", nargs=-1, shell_complete=complete_contexts)
@click.option("--format", "output_format", type=click.Choice(["json"]), default="json")
def context_inspect(names: tuple[str, ...], output_format: str) -> None:
    """Show contexts as a JSON list (default: the one in use).

    \b
    Example:
      clusterctl context inspect prod
    """
    contexts = Contexts()
    chosen = names or tuple(n for n in [contexts.current_name()] if n)
    if not chosen:
        raise ContextError("no context in use: name one (see: clusterctl context ls)")
    print_json(
        [dict(asdict(contexts.get(n)), current=n == contexts.current_name()) for n in chosen]
    )


@context_group.command("rm")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_contexts)
def context_rm(names: tuple[str, ...]) -> None:
    """Remove contexts (and the certificates copied for them).

    \b
    Example:
      clusterctl context rm prod
    """
    contexts = Contexts()

    def one(name: str) -> None:
        contexts.remove(name)
        click.echo(name)

    for_each(names, one)
