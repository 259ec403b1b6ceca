"""The flags of `service create` and `service update`, declared once: docker's
names, each with its help. Values stay strings; service_flags reads them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

F = TypeVar("F", bound=Callable[..., Any])


def options(*options: Callable[[F], F]) -> Callable[[F], F]:
    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _many(*decls: str, help: str, metavar: str = "TEXT") -> Callable[[F], F]:
    return click.option(*decls, multiple=True, metavar=metavar, help=help)


def _one(*decls: str, help: str, metavar: str = "TEXT") -> Callable[[F], F]:
    return click.option(*decls, default=None, metavar=metavar, help=help)


_UPDATE_KIND = {"update": "an update", "rollback": "a rollback"}


def _rollout_options(kind: str) -> list[Callable[[F], F]]:
    actions = ["pause", "continue", "rollback"] if kind == "update" else ["pause", "continue"]
    return [
        _one(
            f"--{kind}-parallelism",
            metavar="N",
            help=f"Tasks replaced at once in {_UPDATE_KIND[kind]} (0: all).",
        ),
        _one(f"--{kind}-delay", metavar="DURATION", help="Wait between batches (e.g. 10s)."),
        click.option(
            f"--{kind}-failure-action", type=click.Choice(actions), help="On a failed task."
        ),
        _one(
            f"--{kind}-monitor",
            metavar="DURATION",
            help="How long a new task is watched for failure.",
        ),
        _one(f"--{kind}-max-failure-ratio", metavar="RATIO", help="Failures tolerated (0 to 1)."),
        click.option(
            f"--{kind}-order",
            type=click.Choice(["stop-first", "start-first"]),
            help="Stop the old task first, or start the new one first.",
        ),
    ]


# Flags of both `create` and `update`.
SHARED_OPTIONS: list[Callable[[F], F]] = [
    _one("--replicas", metavar="N", help="Number of tasks."),
    _one("--replicas-max-per-node", metavar="N", help="At most N tasks on one node (0: no limit)."),
    _one("--reserve-cpu", metavar="CPUS", help="CPUs reserved for each task (e.g. 0.5)."),
    _one("--reserve-memory", metavar="BYTES", help="Memory reserved for each task (e.g. 512M)."),
    _one("--limit-cpu", metavar="CPUS", help="CPUs a task may use."),
    _one("--limit-memory", metavar="BYTES", help="Memory a task may use (e.g. 1G)."),
    _one("--limit-pids", metavar="N", help="Processes a task may run (0: no limit)."),
    _one("--health-cmd", metavar="CMD", help="Command that checks the task's health (shell)."),
    _one("--health-interval", metavar="DURATION", help="Time between health checks."),
    _one("--health-timeout", metavar="DURATION", help="Time a health check may take."),
    _one("--health-retries", metavar="N", help="Failures in a row that make a task unhealthy."),
    _one("--health-start-period", metavar="DURATION", help="Grace time before failures count."),
    click.option(
        "--no-healthcheck", is_flag=True, default=None, help="Disable the image's health check."
    ),
    click.option(
        "--restart-condition",
        type=click.Choice(["none", "on-failure", "any"]),
        help="When a task is restarted.",
    ),
    _one("--restart-delay", metavar="DURATION", help="Wait before restarting a task."),
    _one("--restart-max-attempts", metavar="N", help="Restarts before giving up."),
    _one(
        "--restart-window", metavar="DURATION", help="Window the restart attempts are counted in."
    ),
    *_rollout_options("update"),
    *_rollout_options("rollback"),
    click.option(
        "--endpoint-mode",
        type=click.Choice(["vip", "dnsrr"]),
        help="A virtual IP, or DNS round robin.",
    ),
    _one("--user", "-u", metavar="USER[:GROUP]", help="User the command runs as."),
    _one("--workdir", "-w", metavar="DIR", help="Working directory in the container."),
    _one("--hostname", metavar="NAME", help="Container hostname."),
    click.option(
        "--read-only/--no-read-only", default=None, help="Mount the root filesystem read-only."
    ),
    _one("--stop-signal", metavar="SIGNAL", help="Signal that stops the container."),
    _one(
        "--stop-grace-period", metavar="DURATION", help="Wait before killing a stopping container."
    ),
    click.option("--init/--no-init", default=None, help="Run an init process in the container."),
    _many("--cap-add", metavar="CAP", help="Add a Linux capability."),
    _many("--cap-drop", metavar="CAP", help="Drop a Linux capability."),
    click.option(
        "--detach", "-d", is_flag=True, help="Return at once, without waiting to converge."
    ),
    click.option("--quiet", "-q", is_flag=True, help="No progress output."),
]

# create's list flags; update has the --X-add / --X-rm pairs instead.
# flag → (what it names, its syntax, how --X-rm names one)
LIST_OPTIONS = {
    "env": ("an environment variable", "KEY=VALUE", "KEY"),
    "label": ("a service label", "KEY=VALUE", "KEY"),
    "publish": ("a port", "8080:80[/udp] or published=8080,target=80,mode=host", "TARGET[/PROTO]"),
    "network": ("a network", "NETWORK", "NETWORK"),
    "constraint": ("a placement constraint", "e.g. node.role==worker", "EXPR"),
    "placement-pref": ("a placement preference", "spread=node.labels.zone", "PREF"),
    "mount": ("a mount", "type=volume|bind|tmpfs,source=,target=,readonly", "TARGET"),
    "secret": ("a secret", "NAME or source=NAME,target=,uid=,gid=,mode=", "NAME"),
    "config": ("a config", "NAME or source=NAME,target=,uid=,gid=,mode=", "NAME"),
    "sysctl": ("a namespaced kernel parameter", "KEY=VALUE", "KEY"),
}


def given(context: click.Context) -> dict[str, Any]:
    """The options the user typed: update changes only these."""
    return {
        name: value
        for name, value in context.params.items()
        if context.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    }


def _update_options() -> list[Callable[[F], F]]:
    options = [
        _one("--image", metavar="IMAGE", help="The image to run."),
        _one(
            "--args",
            metavar="ARGS",
            help="The command's arguments (one string, split as a shell would).",
        ),
        click.option(
            "--force", is_flag=True, default=None, help="Replace the tasks even if nothing changed."
        ),
    ]
    for flag, (what, syntax, key) in LIST_OPTIONS.items():
        metavar = flag.split("-")[0].upper()
        options.append(_many(f"--{flag}-add", metavar=metavar, help=f"Add {what}: {syntax}."))
        options.append(_many(f"--{flag}-rm", metavar=key, help=f"Remove {what}, by {key}."))
    return options


def _create_list_options() -> list[Callable[[F], F]]:
    found = [
        _many("--env", "-e", metavar="KEY=VALUE", help="Set an environment variable (repeat)."),
        _many("--env-file", metavar="FILE", help="Read environment variables from a file."),
        _many("--publish", "-p", metavar="PORT", help=f"Publish {LIST_OPTIONS['publish'][1]}."),
    ]
    for flag, (what, syntax, _) in LIST_OPTIONS.items():
        if flag not in ("env", "publish"):
            metavar = flag.split("-")[0].upper()
            found.append(_many(f"--{flag}", metavar=metavar, help=f"Add {what}: {syntax}."))
    return found


CREATE_LIST_OPTIONS = _create_list_options()
UPDATE_OPTIONS = _update_options()
