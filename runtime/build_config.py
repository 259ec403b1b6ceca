"""The image config a build step leaves behind: pure functions of the config
before it and the (expanded) instruction, plus the build's ARG bookkeeping.

Configs are plain dicts in the OCI layout ({"config": {...}, "rootfs": ...,
"history": [...]}); `canonical` gives their bytes, sorted and compact, so an
unchanged build gives the same config digest (the image ID).
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import posixpath
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from runtime.dockerfile_instructions import (
    Arg,
    Cmd,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from runtime.oci_spec import SpecError, parse_signal

DEFAULT_SHELL = ["/bin/sh", "-c"]
EPOCH = "1970-01-01T00:00:00Z"
# Go (and so Docker) names architectures this way; the image is for this host.
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
# Docker's layer media types name the same bytes as OCI's; a build's manifest is OCI.
OCI_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": (
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ),
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
}
_KEPT = ("architecture", "os", "os.version", "variant", "author", "config", "rootfs", "history")


def canonical(config: Mapping[str, Any]) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def config_digest(config: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(config)).hexdigest()


def scratch_config() -> dict[str, Any]:
    machine = platform.machine()
    return {
        "architecture": _ARCHITECTURES.get(machine, machine),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }


def base_config(image_config: Mapping[str, Any]) -> dict[str, Any]:
    """A base image's config as the start of a build: what a child inherits,
    without Docker's container bookkeeping (container, container_config)."""
    config = {k: copy.deepcopy(v) for k, v in image_config.items() if k in _KEPT}
    config.setdefault("config", {})
    config["config"] = config["config"] or {}
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config.setdefault("history", [])
    return config


def env_map(config: Mapping[str, Any]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in (config.get("config") or {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        result[key] = value
    return result


def shell(config: Mapping[str, Any]) -> list[str]:
    return list((config.get("config") or {}).get("Shell") or DEFAULT_SHELL)


class BuildArgs:
    """ARG values: a build arg wins over the Dockerfile's default; an ARG
    before FROM is visible in FROM and, re-declared without a value, after it."""

    def __init__(self, given: Mapping[str, str]) -> None:
        self.given = dict(given)
        self.global_values: dict[str, str] = {}
        self.values: dict[str, str] = {}  # declared in the stage, with a value
        self.used: set[str] = set()

    def declare(self, instruction: Arg, in_stage: bool) -> None:
        for name, default in instruction.pairs:
            self.used.add(name)
            value = self.given.get(name, default)
            if value is None and in_stage:
                value = self.global_values.get(name)
            target = self.values if in_stage else self.global_values
            if value is not None:
                target[name] = value
            else:
                target.pop(name, None)

    def unused(self) -> list[str]:
        return sorted(set(self.given) - self.used)

    def expansion_env(self, config: Mapping[str, Any]) -> dict[str, str]:
        """What `$VAR` means in a step: ENV wins over ARG, as in Docker."""
        return {**self.values, **env_map(config)}

    def run_env(self, config: Mapping[str, Any]) -> list[str]:
        """The ARGs a RUN sees in its environment (the image's Env comes too)."""
        env = env_map(config)
        return [f"{k}={v}" for k, v in sorted(self.values.items()) if k not in env]


def _fields(instruction: Instruction) -> dict[str, Any]:
    return {k: v for k, v in asdict(instruction).items() if k not in ("where", "text")}


def step_description(instruction: Instruction) -> str:
    """The expanded instruction as the build cache sees it: without its line,
    so a step that moves keeps its cache entry."""
    return json.dumps([instruction.keyword, _fields(instruction)], sort_keys=True)


def created_by(instruction: Instruction) -> str:
    """A metadata step's history line, with its variables' values."""
    fields = _fields(instruction)
    if "pairs" in fields:
        return f"{instruction.keyword} " + " ".join(f"{k}={v}" for k, v in fields["pairs"])
    if "words" in fields:
        return f"{instruction.keyword} " + " ".join(fields["words"])
    if "value" in fields:
        return f"{instruction.keyword} {fields['value']}"
    return instruction.text


def _ports(instruction: Expose) -> list[str]:
    ports = []
    for word in instruction.words:
        number, _, protocol = word.partition("/")
        protocol = (protocol or "tcp").lower()
        first, _, last = number.partition("-")
        if protocol not in ("tcp", "udp", "sctp"):
            raise instruction.error(f"invalid protocol {protocol!r} in EXPOSE {word}")
        if not first.isdigit() or (last and not last.isdigit()):
            raise instruction.error(f"invalid port {word!r} in EXPOSE")
        low, high = int(first), int(last or first)
        if not 0 < low <= high <= 65535:
            raise instruction.error(f"invalid port range {word!r} in EXPOSE")
        ports += [f"{port}/{protocol}" for port in range(low, high + 1)]
    return ports


def apply_metadata(config: Mapping[str, Any], instruction: Instruction) -> dict[str, Any]:
    """The config after a metadata instruction (expanded already); not the
    history, which `add_history` writes."""
    result = copy.deepcopy(dict(config))
    inner: dict[str, Any] = result.setdefault("config", {})
    match instruction:
        case Env(pairs=pairs):
            env = env_map(result)
            env.update(dict(pairs))
            inner["Env"] = [f"{k}={v}" for k, v in env.items()]
        case Label(pairs=pairs):
            inner["Labels"] = {**(inner.get("Labels") or {}), **dict(pairs)}
        case Workdir(value=path):
            inner["WorkingDir"] = posixpath.normpath(
                posixpath.join(inner.get("WorkingDir") or "/", path)
            )
        case User(value=user):
            inner["User"] = user
        case Entrypoint():
            inner["Entrypoint"] = instruction.argv(shell(result))
            # Docker: a new ENTRYPOINT drops the CMD inherited from the base.
            inner.pop("Cmd", None)
        case Cmd():
            inner["Cmd"] = instruction.argv(shell(result))
        case Shell(args=args):
            inner["Shell"] = list(args)
        case Expose():
            inner["ExposedPorts"] = {
                **(inner.get("ExposedPorts") or {}),
                **{port: {} for port in _ports(instruction)},
            }
        case Volume(words=paths):
            inner["Volumes"] = {**(inner.get("Volumes") or {}), **{p: {} for p in paths}}
        case StopSignal(value=signal):
            try:
                parse_signal(signal)
            except SpecError as exc:
                raise instruction.error(str(exc)) from None
            inner["StopSignal"] = signal
        case Healthcheck():
            inner["Healthcheck"] = instruction.config()
        case Maintainer(value=name):
            result["author"] = name
        case _:
            raise instruction.error(f"{instruction.keyword} does not change the config")
    return result


def add_history(
    config: Mapping[str, Any], created_by: str, created: str, diff_id: str | None
) -> dict[str, Any]:
    """The config with one more history entry, and the layer's diff ID when
    the step made a layer (else the entry says empty_layer)."""
    result = copy.deepcopy(dict(config))
    entry: dict[str, Any] = {"created": created, "created_by": created_by}
    if diff_id is None:
        entry["empty_layer"] = True
    else:
        rootfs = result.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), diff_id]
    result["history"] = [*result.get("history", []), entry]
    result["created"] = created
    return result
