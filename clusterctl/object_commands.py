"""`clusterctl secret|config|volume ...`: the small objects services use.
Secrets and configs have one shape (a secret's data is never shown), so one
factory builds both command groups."""

from __future__ import annotations

import base64
from typing import Any

import click

from clusterctl.common import (
    Target,
    api_path,
    complete_names,
    filter_dict,
    filter_option,
    filters_query,
    for_each,
    format_option,
    inspect_as_json,
    inspect_format_option,
    key_values,
    quiet_option,
    read_data,
    target_options,
)
from clusterctl.output import ago, print_fields, print_ids, print_json, print_table, short_id


def pretty_object(kind: str, obj: dict[str, Any]) -> list[tuple[int, str, object]]:
    """The lines of `docker secret|config inspect --pretty`."""
    spec = obj.get("Spec") or {}
    lines: list[tuple[int, str, object]] = [
        (0, "ID", obj["ID"]),
        (0, "Name", spec.get("Name", "")),
    ]
    if spec.get("Labels"):
        lines.append((0, "Labels", None))
        lines += [(1, "-", f"{k}={v}") for k, v in sorted(spec["Labels"].items())]
    lines += [
        (0, "Created at", obj.get("CreatedAt", "")),
        (0, "Updated at", obj.get("UpdatedAt", "")),
    ]
    if kind == "config":
        data = base64.b64decode(str(spec.get("Data") or "")).decode(errors="replace")
        lines.append((0, "Data", None))
        lines += [(0, line, None) for line in data.splitlines()]
    return lines


def object_group(kind: str, what: str) -> click.Group:
    """The create/ls/inspect/rm commands of secrets or configs."""
    plural = f"{kind}s"
    group = click.Group(kind, help=f"The cluster's {plural}: {what}.")

    @group.command("create")
    @click.argument("name")
    @click.argument("source", metavar="FILE|-")
    @click.option("--label", "-l", "labels", multiple=True, metavar="KEY=VALUE", help="Label.")
    @target_options
    def create(name: str, source: str, labels: tuple[str, ...], target: Target) -> None:
        body = {
            "Name": name,
            "Labels": key_values(labels, "--label", value_required=False),
            "Data": base64.b64encode(read_data(source)).decode(),
        }
        click.echo(target.call("POST", f"/{plural}/create", body)["ID"])

    create.help = (
        f"Create a {kind} from a file, or from stdin with `-`; prints its ID.\n\n"
        f"\b\nExample:\n  printf s3cret | clusterctl {kind} create db_password -\n"
        f"  clusterctl {kind} create --label env=prod site_conf ./site.conf"
    )

    @group.command("ls")
    @quiet_option
    @filter_option
    @format_option
    @target_options
    def ls(quiet: bool, filters: tuple[str, ...], output_format: str, target: Target) -> None:
        found = target.get(plural, filters=filters_query(filter_dict(filters)))
        found = sorted(found, key=lambda o: (o["Spec"]["Name"], o["ID"]))
        if output_format == "json":
            print_json(found)
        elif quiet:
            print_ids([o["ID"] for o in found])
        else:
            rows = [
                [
                    short_id(o["ID"]),
                    o["Spec"]["Name"],
                    ago(o.get("CreatedAt")),
                    ago(o.get("UpdatedAt")),
                ]
                for o in found
            ]
            print_table(["id", "name", "created", "updated"], rows)

    ls.help = (
        f"List the {plural}.\n\n\b\nExample:\n  clusterctl {kind} ls\n  clusterctl {kind} ls -q"
    )

    @group.command("inspect")
    @click.argument(
        "refs",
        nargs=-1,
        required=True,
        metavar=f"{kind.upper()}...",
        shell_complete=complete_names(plural),
    )
    @click.option("--pretty", is_flag=True, help="Readable text instead of JSON.")
    @inspect_format_option
    @target_options
    def inspect(refs: tuple[str, ...], pretty: bool, output_format: str, target: Target) -> None:
        found: list[dict[str, Any]] = []

        def show() -> None:
            if not pretty:
                print_json(found)
            for index, obj in enumerate(found if pretty else []):
                if index:
                    click.echo()
                print_fields(pretty_object(kind, obj))

        for_each(refs, lambda ref: found.append(target.get(plural, ref)), show)

    inspect.help = (
        f"Show {plural} in detail, as a JSON list (by name, ID or ID prefix)"
        + (", never their data" if kind == "secret" else "")
        + f".\n\n\b\nExample:\n  clusterctl {kind} inspect --pretty my_{kind}"
    )

    @group.command("rm")
    @click.argument(
        "refs",
        nargs=-1,
        required=True,
        metavar=f"{kind.upper()}...",
        shell_complete=complete_names(plural),
    )
    @target_options
    def rm(refs: tuple[str, ...], target: Target) -> None:
        def one(ref: str) -> None:
            target.call("DELETE", api_path(plural, ref))
            click.echo(ref)

        for_each(refs, one)

    rm.help = (
        f"Remove {plural} (no service may still use them).\n\n"
        f"\b\nExample:\n  clusterctl {kind} rm my_{kind}"
    )
    return group


secret_group = object_group("secret", "sensitive data, mounted in tasks at /run/secrets")
config_group = object_group("config", "files mounted into tasks")


@click.group("volume")
def volume_group() -> None:
    """The cluster's volumes (local, or shoal: distributed, following their task)."""


@volume_group.command("create")
@click.argument("name")
@click.option(
    "--driver",
    "-d",
    default="local",
    show_default=True,
    # No click.Choice: the manager checks driver and options alike, and its
    # message says what is wrong with either.
    help="local: on each node; shoal: one volume the whole cluster reaches "
    "(options: replication=xyz, default 001; sharing=none|all).",
)
@click.option("--opt", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Driver option.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Label (repeat).")
@target_options
def volume_create_command(
    name: str, driver: str, options: tuple[str, ...], labels: tuple[str, ...], target: Target
) -> None:
    """Create a volume; prints its name.

    \b
    Example:
      clusterctl volume create -d shoal --opt replication=000 data
    """
    body = {
        "Name": name,
        "Driver": driver,
        "DriverOpts": key_values(options, "--opt"),
        "Labels": key_values(labels, "--label", value_required=False),
    }
    click.echo(target.call("POST", "/volumes/create", body)["Name"])


@volume_group.command("ls")
@quiet_option
@filter_option
@format_option
@target_options
def volume_ls_command(
    quiet: bool, filters: tuple[str, ...], output_format: str, target: Target
) -> None:
    """List the volumes (-q: their names).

    \b
    Example:
      clusterctl volume ls --filter driver=shoal
    """
    volumes = target.get("volumes", filters=filters_query(filter_dict(filters)))["Volumes"] or []
    if output_format == "json":
        print_json(volumes)
    elif quiet:
        print_ids([v["Name"] for v in volumes])
    else:
        print_table(["driver", "volume name"], [[v["Driver"], v["Name"]] for v in volumes])


@volume_group.command("inspect")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_names("volumes"))
@inspect_format_option
@target_options
def volume_inspect_command(names: tuple[str, ...], output_format: str, target: Target) -> None:
    """Show volumes in detail, as a JSON list.

    \b
    Example:
      clusterctl volume inspect data
    """
    inspect_as_json(target, "volumes", names)


@volume_group.command("rm")
@click.option("--force", "-f", is_flag=True, help="No error for a volume that does not exist.")
@click.argument("names", nargs=-1, required=True, shell_complete=complete_names("volumes"))
@target_options
def volume_rm_command(force: bool, names: tuple[str, ...], target: Target) -> None:
    """Remove volumes.

    \b
    Example:
      clusterctl volume rm data
    """

    def one(name: str) -> None:
        target.call("DELETE", api_path("volumes", name, force="1" if force else None))
        click.echo(name)

    for_each(names, one)
