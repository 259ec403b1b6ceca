"""Dockerfiles as typed instructions.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Self

from dockerfile_parse import DockerfileParser

from runtime.dockerfile_words import (
    expand,
    parse_duration,
    split_words,
    take_flags,
)
from runtime.protocol import ContainerRuntimeError


class BuildError(ContainerRuntimeError):
    """A build that cannot go on; the message names the Dockerfile line to
    blame. `output` holds what a failed RUN printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class Instruction:
    where: str  # "Dockerfile:3", the start of every message about it
    text: str  # as written, continuation lines joined: "COPY a.txt /app/"

    @property
    def keyword(self) -> str:
        return self.text.split(None, 1)[0]

    @property
    def line(self) -> int:
        return int(self.where.rsplit(":", 1)[1])

    def error(self, message: str) -> BuildError:
        return BuildError(f"{self.where}: {message}")

    def expanded(self, env: Mapping[str, str]) -> Self:
        """This instruction with its variables substituted (most have none)."""
        return self

    def _word(self, word: str, env: Mapping[str, str]) -> str:
        try:
            return expand(word, env)
        except ValueError as exc:
            raise self.error(str(exc)) from None


@dataclass(frozen=True)
class From(Instruction):
    image: str  # "scratch" or a reference
    stage: str = ""  # the AS name (one stage is built, so it only names it)

    def expanded(self, env: Mapping[str, str]) -> Self:
        return replace(self, image=self._word(self.image, env))


@dataclass(frozen=True)
class Copy(Instruction):
    """COPY, or ADD (`add`: local tar archives are unpacked)."""

    sources: tuple[str, ...]
    dest: str
    chown: str = ""
    chmod: str = ""
    add: bool = False

    def expanded(self, env: Mapping[str, str]) -> Self:
        return replace(
            self,
            sources=tuple(self._word(s, env) for s in self.sources),
            dest=self._word(self.dest, env),
            chown=self._word(self.chown, env),
            chmod=self._word(self.chmod, env),
        )


@dataclass(frozen=True)
class Command(Instruction):
    """RUN, CMD or ENTRYPOINT: exec form (the JSON list) or shell form (one
    string, run by the image's shell)."""

    args: tuple[str, ...]
    shell_form: bool

    def argv(self, shell: list[str]) -> list[str]:
        return [*shell, self.args[0]] if self.shell_form else list(self.args)


class Run(Command):
    pass


class Cmd(Command):
    pass


class Entrypoint(Command):
    pass


@dataclass(frozen=True)
class Shell(Instruction):
    args: tuple[str, ...]


@dataclass(frozen=True)
class KeyValues(Instruction):
    """ENV or LABEL: name/value pairs."""

    pairs: tuple[tuple[str, str], ...]

    def expanded(self, env: Mapping[str, str]) -> Self:
        pairs = tuple((self._word(k, env), self._word(v, env)) for k, v in self.pairs)
        for key, _ in pairs:
            if not key:
                raise self.error(f"{self.keyword} names can not be blank")
        return replace(self, pairs=pairs)


class Env(KeyValues):
    pass


class Label(KeyValues):
    pass


@dataclass(frozen=True)
class Arg(Instruction):
    pairs: tuple[tuple[str, str | None], ...]  # name, default (None: none given)

    def expanded(self, env: Mapping[str, str]) -> Self:
        return replace(
            self,
            pairs=tuple((k, None if v is None else self._word(v, env)) for k, v in self.pairs),
        )


@dataclass(frozen=True)
class Words(Instruction):
    """EXPOSE, VOLUME: a list of words, each expanded."""

    words: tuple[str, ...]

    def expanded(self, env: Mapping[str, str]) -> Self:
        return replace(self, words=tuple(self._word(w, env) for w in self.words))


class Expose(Words):
    pass


class Volume(Words):
    pass


@dataclass(frozen=True)
class Value(Instruction):
    """WORKDIR, USER, STOPSIGNAL, MAINTAINER: one value."""

    value: str

    def expanded(self, env: Mapping[str, str]) -> Self:
        expanded = self._word(self.value, env)
        if not expanded:
            raise self.error(f"{self.keyword} requires a non-empty value")
        return replace(self, value=expanded)


class Workdir(Value):
    pass


class User(Value):
    pass


class StopSignal(Value):
    pass


class Maintainer(Value):
    def expanded(self, env: Mapping[str, str]) -> Self:
        return self  # Docker leaves MAINTAINER as written


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """The image's Healthcheck, durations in nanoseconds (0: the default)."""

    test: tuple[str, ...]  # ("NONE",) | ("CMD", ...) | ("CMD-SHELL", cmd)
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    retries: int = 0

    def config(self) -> dict[str, object]:
        result: dict[str, object] = {"Test": list(self.test)}
        for key, value in (
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("Retries", self.retries),
        ):
            if value:  # Docker omits zero values: the runtime's defaults apply
                result[key] = value
        return result


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
