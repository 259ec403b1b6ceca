"""`clusterctl lab ...`: a multi-host lab on this machine."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from clusterctl.cluster_commands import docker_hint
from clusterctl.contexts import Context, Contexts
from clusterctl.output import print_json, print_table, status_line
from lab.configs import manager_address
from lab.spec import DEFAULT_LAB_NAME

if TYPE_CHECKING:
    from lab.status import LabStatus

# lab.lifecycle and lab.status pull in the containerd client: imported when a
# lab command runs, so every other command starts faster.

FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    help="Print a table (default) or JSON.",
)


class LabGroup(click.Group):
    """Turns the lab's own errors into the one-line kind."""

    def invoke(self, ctx: click.Context) -> Any:
        from lab.lifecycle import LabError

        try:
            return super().invoke(ctx)
        except LabError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group("lab", cls=LabGroup)
def lab_group() -> None:
    """Local multi-host labs: hosts are network namespaces on this machine."""


@lab_group.command("up")
@click.option("--hosts", "-n", type=int, default=3, show_default=True, help="Number of hosts.")
@click.option("--name", default=DEFAULT_LAB_NAME, show_default=True, help="Name of the lab.")
@click.option(
    "--managers",
    "-m",
    type=int,
    default=0,
    show_default=True,
    help="Run shoal-manager on the first M hosts, as one cluster.",
)
@click.option(
    "--underlay",
    default=None,
    help="Underlay subnet (default: the first free /24 from 198.18.0.0/24 on).",
)
def lab_up_command(hosts: int, name: str, managers: int, underlay: str | None) -> None:
    """Bring up a lab of N hosts, each with its own containerd.

    \b
    Example:
      clusterctl lab up --hosts 3 --managers 3 --name demo
    """
    from lab.lifecycle import lab_up
    from lab.status import lab_status

    spec = lab_up(name, hosts, underlay, progress=status_line, managers=managers)
    status_line(f"lab {spec.name} is up")
    _print_hosts(lab_status(spec.name))
    click.echo(f"\nregistry: {spec.registry_address}   (insecure HTTP, on {spec.host(1).name})")
    if managers:
        click.echo(
            f"managers: {', '.join(manager_address(spec.host(i)) for i in range(1, managers + 1))}"
        )
        context = Context(f"lab-{spec.name}", manager_address(spec.host(1)), str(spec.client_certs))
        contexts = Contexts()
        contexts.save(context)
        contexts.use(context.name)
        click.echo(f"clusterctl context: {context.name} (in use; try: clusterctl node ls)")
        click.echo(f"docker CLI: {docker_hint(context)}")
    click.echo(f"run a command in a host: clusterctl lab exec --lab {spec.name} h1 -- hostname")
    click.echo(f"remove the lab:          clusterctl lab down {spec.name}")


@lab_group.command("ls")
@FORMAT_OPTION
def lab_ls_command(output_format: str) -> None:
    """List the labs on this machine.

    \b
    Example:
      clusterctl lab ls --format json
    """
    from lab.lifecycle import lab_root, list_labs, read_metadata
    from lab.status import lab_status

    rows = []
    for name in list_labs():
        meta = read_metadata(lab_root() / name) or {}
        state = lab_status(name).state
        rows.append(
            {
                "name": name,
                "hosts": meta.get("hosts"),
                "underlay": meta.get("underlay"),
                "state": state,
            }
        )
    if output_format == "json":
        print_json(rows)
        return
    print_table(["name", "hosts", "underlay", "state"], [list(r.values()) for r in rows])


@lab_group.command("status")
@click.argument("name", default=DEFAULT_LAB_NAME)
@FORMAT_OPTION
def lab_status_command(name: str, output_format: str) -> None:
    """Show a lab's hosts, addresses, sockets and the health of each.

    \b
    Example:
      clusterctl lab status demo
    """
    from lab.status import lab_status

    status = lab_status(name)
    if output_format == "json":
        print_json(_status_json(status))
        return
    click.echo(
        f"lab {name}: {status.state}; underlay {status.spec.underlay}; "
        f"supervisor pid {status.supervisor_pid or '-'}"
    )
    _print_hosts(status)


def _status_json(status: LabStatus) -> dict[str, object]:
    spec = status.spec
    return {
        "name": spec.name,
        "client_certs": str(spec.client_certs),
        "state": status.state,
        "underlay": str(spec.underlay),
        "registry": spec.registry_address,
        "registry_ok": status.registry_ok,
        "supervisor_pid": status.supervisor_pid,
        "hosts": [
            {
                "name": h.host.name,
                "hostname": h.host.hostname,
                "address": str(h.host.address),
                "netns": h.host.netns,
                "containerd_socket": str(h.host.containerd_socket),
                "containerd_version": h.containerd_version,
            }
            for h in status.hosts
        ],
        "services": {k: dict(v) for k, v in status.services.items()},
        "spec": {k: str(v) for k, v in asdict(spec).items()},
    }


def _print_hosts(status: LabStatus) -> None:
    rows = []
    for h in status.hosts:
        extra = " + registry" if h.host.index == 1 else ""
        health = f"up {h.containerd_version}" if h.containerd_version else "down"
        rows.append(
            [
                h.host.name,
                h.host.hostname,
                h.host.address,
                h.host.netns,
                h.host.containerd_socket,
                health + extra,
            ]
        )
    print_table(["host", "hostname", "address", "netns", "containerd socket", "containerd"], rows)


@lab_group.command(
    "exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--lab", "lab_name", default=DEFAULT_LAB_NAME, show_default=True)
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def lab_exec_command(lab_name: str, host: str, command: tuple[str, ...]) -> None:
    """Run a command inside a lab host (its network, mount and UTS namespaces).

    \b
    Example:
      clusterctl lab exec --lab demo h2 -- ip addr
    """
    from lab.status import exec_argv

    args = list(command)
    if args and args[0] == "--":  # click keeps the separator once options are over
        args = args[1:]
    if not args:
        raise click.UsageError("lab exec needs a command to run")
    argv = exec_argv(lab_name, host, args)
    os.execvp(argv[0], argv)


@lab_group.command("down")
@click.argument("name", default=DEFAULT_LAB_NAME)
def lab_down_command(name: str) -> None:
    """Remove a lab and everything it created; safe to run twice.

    \b
    Example:
      clusterctl lab down demo
    """
    from lab.lifecycle import lab_down

    found = lab_down(name)
    contexts = Contexts()
    if any(c.name == f"lab-{name}" for c in contexts.all()):
        contexts.remove(f"lab-{name}")
    status_line(f"lab {name} removed" if found else f"lab {name}: nothing to remove")
