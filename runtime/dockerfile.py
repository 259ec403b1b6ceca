"""Dockerfiles as typed instructions (runtime/dockerfile_instructions.py).

dockerfile-parse finds the instructions (it joins continuation lines, skips
comments and keeps line numbers); this module checks each one's syntax and
gives it a type. Variables are substituted later, step by step, because their
values (ARGs, the base image's ENV) are known only while building: each
instruction's `expanded(env)` applies Docker's word processing to the
instructions Docker expands (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, USER,
WORKDIR, VOLUME, STOPSIGNAL). Pure: no I/O.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from dockerfile_parse import DockerfileParser

from runtime.dockerfile_instructions import (
    Arg,
    BuildError,
    Cmd,
    Command,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Run,
    Shell,
    StopSignal,
    User,
    Value,
    Volume,
    Words,
    Workdir,
)
from runtime.dockerfile_words import parse_duration, split_words, take_flags

# ---- parsing -----------------------------------------------------------------

_Parser = Callable[[Instruction, str], Instruction]
COPY_FLAGS = {"chown", "chmod", "link"}
UNSUPPORTED_FLAGS = {
    "from": "COPY --from (multi-stage builds)",
    "platform": "--platform",
    "mount": "RUN --mount",
    "network": "RUN --network",
    "security": "RUN --security",
    "checksum": "ADD --checksum",
    "keep-git-dir": "ADD --keep-git-dir",
    "parents": "COPY --parents",
    "exclude": "COPY --exclude",
    "start-interval": "HEALTHCHECK --start-interval",
}


def _flags(base: Instruction, value: str, allowed: set[str]) -> tuple[dict[str, str], str]:
    flags, rest = take_flags(value)
    for name in flags:
        if name in UNSUPPORTED_FLAGS:
            raise base.error(f"{UNSUPPORTED_FLAGS[name]} is not supported")
        if name not in allowed:
            raise base.error(f"unknown flag: --{name}")
    return flags, rest


def _json_list(value: str) -> list[str] | None:
    """The exec (JSON) form, or None: Docker takes anything else as shell form."""
    if not value.startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None


def _from(base: Instruction, value: str) -> Instruction:
    _, rest = _flags(base, value, set())
    words = rest.split()
    if len(words) == 1:
        return From(base.where, base.text, words[0])
    if len(words) == 3 and words[1].upper() == "AS":
        return From(base.where, base.text, words[0], words[2].lower())
    raise base.error("FROM requires either one or three arguments: FROM <image> [AS <name>]")


def _copy(base: Instruction, value: str) -> Instruction:
    flags, rest = _flags(base, value, COPY_FLAGS)
    words = _json_list(rest)
    if words is None:
        words = rest.split()
    if len(words) < 2:
        raise base.error(f"{base.keyword} requires at least two arguments: <src>... <dest>")
    return Copy(
        base.where,
        base.text,
        tuple(words[:-1]),
        words[-1],
        chown=flags.get("chown", ""),
        chmod=flags.get("chmod", ""),
        add=base.keyword == "ADD",
    )


def _command(kind: type[Command]) -> _Parser:
    def parse(base: Instruction, value: str) -> Instruction:
        _, rest = _flags(base, value, set())
        if rest.startswith("<<"):
            raise base.error("heredocs (<<EOF) are not supported")
        args = _json_list(rest)
        if args is not None:
            if kind is Run and not args:
                raise base.error("RUN requires at least one argument")
            return kind(base.where, base.text, tuple(args), shell_form=False)
        if not rest:
            raise base.error(f"{base.keyword} requires at least one argument")
        return kind(base.where, base.text, (rest,), shell_form=True)

    return parse


def _shell(base: Instruction, value: str) -> Instruction:
    args = _json_list(value)
    if not args:
        raise base.error('SHELL requires the JSON form, e.g. SHELL ["/bin/sh", "-c"]')
    return Shell(base.where, base.text, tuple(args))


def _pairs(base: Instruction, value: str) -> tuple[tuple[str, str], ...]:
    words = split_words(value)
    if not words:
        raise base.error(f"{base.keyword} requires at least one argument")
    if "=" not in words[0]:
        # The legacy form "ENV NAME the rest of the line": one pair.
        parts = value.split(None, 1)
        if len(parts) < 2:
            raise base.error(f"{base.keyword} must have two arguments: {base.keyword} NAME VALUE")
        return ((parts[0], parts[1]),)
    pairs = []
    for word in words:
        key, equals, val = word.partition("=")
        if not equals:
            raise base.error(f"syntax error - can't find = in {word!r}: want name=value")
        pairs.append((key, val))
    return tuple(pairs)


def _env(base: Instruction, value: str) -> Instruction:
    return Env(base.where, base.text, _pairs(base, value))


def _label(base: Instruction, value: str) -> Instruction:
    return Label(base.where, base.text, _pairs(base, value))


def _arg(base: Instruction, value: str) -> Instruction:
    words = split_words(value)
    if not words:
        raise base.error("ARG requires at least one argument")
    pairs: list[tuple[str, str | None]] = []
    for word in words:
        name, equals, default = word.partition("=")
        if not name:
            raise base.error("ARG names can not be blank")
        pairs.append((name, default if equals else None))
    return Arg(base.where, base.text, tuple(pairs))


def _words(kind: type[Words], json_allowed: bool) -> _Parser:
    def parse(base: Instruction, value: str) -> Instruction:
        words = _json_list(value) if json_allowed else None
        if words is None:
            words = value.split()
        if not words:
            raise base.error(f"{base.keyword} requires at least one argument")
        return kind(base.where, base.text, tuple(words))

    return parse


def _value(kind: type[Value], one_word: bool) -> _Parser:
    def parse(base: Instruction, value: str) -> Instruction:
        if not value or (one_word and len(value.split()) != 1):
            raise base.error(f"{base.keyword} requires exactly one argument")
        return kind(base.where, base.text, value)

    return parse


def _healthcheck(base: Instruction, value: str) -> Instruction:
    flags, rest = _flags(base, value, {"interval", "timeout", "start-period", "retries"})
    kind, _, command = rest.replace("\t", " ").partition(" ")
    if kind.upper() == "NONE":
        if flags or command.strip():
            raise base.error("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(base.where, base.text, ("NONE",))
    if kind.upper() != "CMD":
        raise base.error(f"unknown type {kind!r} in HEALTHCHECK (try CMD)")
    command = command.strip()
    args = _json_list(command)
    if args is not None and args:
        test: tuple[str, ...] = ("CMD", *args)
    elif command and args is None:
        test = ("CMD-SHELL", command)
    else:
        raise base.error("HEALTHCHECK CMD requires a command")
    durations: dict[str, int] = {}
    for name in ("interval", "timeout", "start-period"):
        try:
            durations[name] = parse_duration(flags.get(name, "0"))
        except ValueError as exc:
            raise base.error(f"HEALTHCHECK --{name}: {exc}") from None
        if 0 < durations[name] < 1_000_000:
            raise base.error(f"HEALTHCHECK --{name} cannot be less than 1ms")
    retries = flags.get("retries", "0")
    if not retries.isdigit():
        raise base.error(f"HEALTHCHECK --retries must be a non-negative integer, not {retries!r}")
    return Healthcheck(
        base.where,
        base.text,
        test,
        interval=durations["interval"],
        timeout=durations["timeout"],
        start_period=durations["start-period"],
        retries=int(retries),
    )


PARSERS: dict[str, _Parser] = {
    "FROM": _from,
    "COPY": _copy,
    "ADD": _copy,
    "RUN": _command(Run),
    "CMD": _command(Cmd),
    "ENTRYPOINT": _command(Entrypoint),
    "SHELL": _shell,
    "ENV": _env,
    "LABEL": _label,
    "ARG": _arg,
    "EXPOSE": _words(Expose, json_allowed=False),
    "VOLUME": _words(Volume, json_allowed=True),
    "WORKDIR": _value(Workdir, one_word=False),
    "USER": _value(User, one_word=True),
    "STOPSIGNAL": _value(StopSignal, one_word=True),
    "MAINTAINER": _value(Maintainer, one_word=False),
    "HEALTHCHECK": _healthcheck,
}
NOT_SUPPORTED = {"ONBUILD"}


def parse_dockerfile(text: str, name: str = "Dockerfile") -> list[Instruction]:
    """The instructions of a Dockerfile (one build stage), syntax checked;
    BuildError("Dockerfile:3: unknown instruction: FOO") otherwise."""
    # dockerfile-parse drops a last line without a newline and an instruction
    # whose continuation runs to the end: an empty last line closes both.
    source = io.BytesIO((text + "\n\n").encode())
    parser = DockerfileParser(fileobj=source, env_replace=False)
    instructions: list[Instruction] = []
    seen_from = False
    for item in parser.structure:
        if str(item["content"]).lstrip().startswith("#"):
            continue  # a comment (or a parser directive)
        keyword = str(item["instruction"]).upper()
        value = str(item["value"]).strip()
        base = Instruction(f"{name}:{int(item['startline']) + 1}", f"{keyword} {value}".rstrip())
        parse = PARSERS.get(keyword)
        if parse is None:
            what = "not supported" if keyword in NOT_SUPPORTED else "unknown instruction"
            raise base.error(f"{what}: {keyword}")
        instruction = parse(base, value)
        if isinstance(instruction, From):
            if seen_from:
                raise base.error("multi-stage builds (a second FROM) are not supported")
            seen_from = True
        elif not seen_from and not isinstance(instruction, Arg):
            raise base.error(f"{keyword} before FROM: only ARG may come before FROM")
        instructions.append(instruction)
    if not seen_from:
        raise BuildError(f"{name}: no FROM instruction (the file has no build stage)")
    return instructions
