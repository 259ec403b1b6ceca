"""clusterctl's entry point: the command tree and the one-line error policy.

Every user error ends as one line on stderr and exit status 1; a traceback is
shown only with --debug.
"""

from __future__ import annotations

import sys
import traceback

import click

from api.client import Unreachable
from api.enroll import EnrollError
from api.errors import ApiError
from clusterctl.cluster_commands import cluster_group, context_group, node_group
from clusterctl.contexts import ContextError
from clusterctl.image_commands import image_group
from clusterctl.lab_commands import lab_group
from clusterctl.service_commands import service_group
from lab.lifecycle import LabError
from lab.spec import LabSpecError

USER_ERRORS = (
    LabError,
    LabSpecError,
    ContextError,
    Unreachable,
    ApiError,
    EnrollError,
    FileNotFoundError,
    PermissionError,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def cli(debug: bool) -> None:
    """Drive a Shoal cluster.

    \b
    Example:
      clusterctl lab up --hosts 3
    """


for group in (cluster_group, node_group, service_group, image_group, context_group, lab_group):
    cli.add_command(group)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="clusterctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(1)
    except USER_ERRORS as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: internal error: {exc} (run with --debug for details)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
