"""The lists `service create/update` flags change: `--env`, `--label`,
`--sysctl`, `--publish`, `--network`, `--constraint`, `--placement-pref`,
`--mount`, `--secret`, `--config` and their `--*-add`/`--*-rm` forms (create
uses the adds). Pure, like service_flags, which applies them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import click

from clusterctl.service_values import (
    Spec,
    bad,
    check_constraint,
    key_value,
    parse_file_ref,
    parse_mount,
    parse_placement_pref,
    parse_publish,
    port_to_remove,
)

CONTAINER = ("TaskTemplate", "ContainerSpec")
PLACEMENT = ("TaskTemplate", "Placement")
SYSCTLS = (*CONTAINER, "Sysctls")


def at(spec: Spec, keys: Iterable[str]) -> Spec:
    """The dict at spec[k1][k2]…, made on the way where absent or null."""
    here = spec
    for key in keys:
        if not isinstance(here.get(key), dict):
            here[key] = {}
        here = here[key]
    return here


@dataclass
class Lookup:
    """IDs the manager gave for names on the command line."""

    secrets: dict[str, str] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)

    def reference(self, text: str, kind: str) -> Spec:
        ref = parse_file_ref(text, f"{kind}")
        ids = self.secrets if kind == "secret" else self.configs
        if ref["Name"] not in ids:
            raise click.ClickException(f"{kind} not found: {ref['Name']}")
        key = kind.capitalize()
        return {"File": ref["File"], f"{key}ID": ids[ref["Name"]], f"{key}Name": ref["Name"]}


def _items(spec: Spec, keys: tuple[str, ...], key: str) -> list[Any]:
    parent = at(spec, keys)
    if not isinstance(parent.get(key), list):
        parent[key] = []
    found: list[Any] = parent[key]
    return found


def _replace(items: list[Any], new: Any, same: Callable[[Any], bool]) -> None:
    items[:] = [item for item in items if not same(item)] + [new]


def _drop(items: list[Any], gone: Callable[[Any], bool]) -> None:
    items[:] = [item for item in items if not gone(item)]


def _env_add(spec: Spec, text: str, lookup: Lookup) -> None:
    env = _items(spec, CONTAINER, "Env")
    _replace(env, text, lambda e: e.partition("=")[0] == text.partition("=")[0])


def _env_rm(spec: Spec, text: str, lookup: Lookup) -> None:
    _drop(_items(spec, CONTAINER, "Env"), lambda e: e == text or e.partition("=")[0] == text)


def _dict_add(keys: tuple[str, ...], flag: str, need_value: bool) -> Callable[..., None]:
    def add(spec: Spec, text: str, lookup: Lookup) -> None:
        name, value = key_value(text, flag) if need_value else text.partition("=")[::2]
        if not name:
            raise bad(flag, f"{text!r} has no key")
        at(spec, keys)[name] = value

    return add


def _dict_rm(keys: tuple[str, ...]) -> Callable[..., None]:
    def remove(spec: Spec, text: str, lookup: Lookup) -> None:
        at(spec, keys).pop(text.partition("=")[0], None)

    return remove


def _publish_add(spec: Spec, text: str, lookup: Lookup) -> None:
    ports = _items(spec, ("EndpointSpec",), "Ports")
    for port in parse_publish(text, "publish"):
        published = port.get("PublishedPort") or 0

        def same(p: Spec, new: Spec = port, published: int = published) -> bool:
            if p.get("Protocol", "tcp") != new["Protocol"]:
                return False
            if published and p.get("PublishedPort") == published:
                return True
            return bool(p.get("TargetPort") == new["TargetPort"] and not published)

        _replace(ports, port, same)


def _publish_rm(spec: Spec, text: str, lookup: Lookup) -> None:
    target, protocol = port_to_remove(text)
    _drop(
        _items(spec, ("EndpointSpec",), "Ports"),
        lambda p: p.get("TargetPort") == target and p.get("Protocol", "tcp") == protocol,
    )


def _network_add(spec: Spec, text: str, lookup: Lookup) -> None:
    target = lookup.networks.get(text, text)
    networks = _items(spec, ("TaskTemplate",), "Networks")
    _replace(networks, {"Target": text}, lambda n: n.get("Target") in (text, target))


def _network_rm(spec: Spec, text: str, lookup: Lookup) -> None:
    target = lookup.networks.get(text, text)
    _drop(_items(spec, ("TaskTemplate",), "Networks"), lambda n: n.get("Target") in (text, target))


def _plain_add(keys: tuple[str, ...], key: str, parse: Callable[[str], Any]) -> Callable[..., None]:
    def add(spec: Spec, text: str, lookup: Lookup) -> None:
        value = parse(text)
        _replace(_items(spec, keys, key), value, lambda v: v == value)

    return add


def _plain_rm(keys: tuple[str, ...], key: str, parse: Callable[[str], Any]) -> Callable[..., None]:
    def remove(spec: Spec, text: str, lookup: Lookup) -> None:
        value = parse(text)
        _drop(_items(spec, keys, key), lambda v: v == value)

    return remove


def _constraint_rm(spec: Spec, text: str, lookup: Lookup) -> None:
    # Compared without spaces: `node.role == manager` is `node.role==manager`.
    squeezed = "".join(text.split())
    _drop(_items(spec, PLACEMENT, "Constraints"), lambda c: "".join(c.split()) == squeezed)


def _mount_add(spec: Spec, text: str, lookup: Lookup) -> None:
    mount = parse_mount(text, "mount")
    _replace(_items(spec, CONTAINER, "Mounts"), mount, lambda m: m["Target"] == mount["Target"])


def _mount_rm(spec: Spec, text: str, lookup: Lookup) -> None:
    _drop(_items(spec, CONTAINER, "Mounts"), lambda m: m.get("Target") == text)


def _ref_add(kind: str) -> Callable[..., None]:
    def add(spec: Spec, text: str, lookup: Lookup) -> None:
        ref = lookup.reference(text, kind)
        target = ref["File"]["Name"]
        refs = _items(spec, CONTAINER, f"{kind.capitalize()}s")
        _replace(refs, ref, lambda r: (r.get("File") or {}).get("Name") == target)

    return add


def _ref_rm(kind: str) -> Callable[..., None]:
    def remove(spec: Spec, text: str, lookup: Lookup) -> None:
        key = kind.capitalize()
        refs = _items(spec, CONTAINER, f"{key}s")
        _drop(refs, lambda r: text in (r.get(f"{key}Name"), r.get(f"{key}ID")))

    return remove


LISTS: dict[str, tuple[Callable[..., None], Callable[..., None]]] = {
    "env": (_env_add, _env_rm),
    "label": (_dict_add(("Labels",), "label", False), _dict_rm(("Labels",))),
    "sysctl": (_dict_add(SYSCTLS, "sysctl", True), _dict_rm(SYSCTLS)),
    "publish": (_publish_add, _publish_rm),
    "network": (_network_add, _network_rm),
    "constraint": (
        _plain_add(PLACEMENT, "Constraints", lambda t: check_constraint(t).strip()),
        _constraint_rm,
    ),
    "placement_pref": (
        _plain_add(PLACEMENT, "Preferences", parse_placement_pref),
        _plain_rm(PLACEMENT, "Preferences", parse_placement_pref),
    ),
    "mount": (_mount_add, _mount_rm),
    "secret": (_ref_add("secret"), _ref_rm("secret")),
    "config": (_ref_add("config"), _ref_rm("config")),
}
