"""clusterctl's entry point: the command tree and the one-line error policy.

Every user error ends as one line on stderr and exit status 1; a traceback is
shown only with --debug.
"""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

import click
from click.shell_completion import get_completion_class

from api.client import Unreachable
from api.enroll import EnrollError
from api.errors import ApiError
from clusterctl.cluster_commands import cluster_group
from clusterctl.context_commands import context_group
from clusterctl.contexts import ContextError
from clusterctl.image_commands import image_group
from clusterctl.lab_commands import lab_group
from clusterctl.network_commands import network_group
from clusterctl.node_commands import node_group
from clusterctl.object_commands import config_group, secret_group, volume_group
from clusterctl.service_commands import service_group
from lab.spec import LabSpecError

USER_ERRORS = (
    LabSpecError,
    ContextError,
    Unreachable,
    ApiError,
    EnrollError,
    OSError,  # files: a certificate, a secret's source; messages name the path
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def cli(debug: bool) -> None:
    """Drive a Shoal cluster.

    \b
    Example:
      clusterctl lab up --hosts 3 --managers 1
      clusterctl node ls
    """


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_command(shell: str) -> None:
    """Print the shell completion script (click's) for bash, zsh or fish.

    \b
    Example:
      eval "$(clusterctl completion bash)"      # in ~/.bashrc
      # the same as: eval "$(_CLUSTERCTL_COMPLETE=bash_source clusterctl)"
    """
    script = get_completion_class(shell)
    assert script is not None  # the choice lists only shells click supports
    click.echo(script(cli, {}, "clusterctl", "_CLUSTERCTL_COMPLETE").source())


for group in (
    cluster_group,
    node_group,
    service_group,
    network_group,
    secret_group,
    config_group,
    volume_group,
    image_group,
    context_group,
    lab_group,
):
    cli.add_command(group)


def fail(message: str, debug: bool, code: int = 1) -> NoReturn:
    """The one line on stderr (a message that spans lines is joined), after
    the traceback with --debug."""
    if debug:
        traceback.print_exc()
    click.echo("error: " + " ".join(message.split()), err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="clusterctl", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        fail("interrupted", debug, 130)
    except click.ClickException as exc:
        fail(exc.format_message(), debug)
    except USER_ERRORS as exc:
        fail(str(exc), debug)
    except Exception as exc:
        hint = "" if debug else " (run with --debug for details)"
        fail(f"internal error: {type(exc).__name__}: {exc}{hint}", debug)
    sys.exit(code if isinstance(code, int) else 0)
