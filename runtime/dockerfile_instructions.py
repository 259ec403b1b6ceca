"""A Dockerfile's instructions as typed values, and the variable substitution
each applies while building (`expanded(env)`: Docker's word processing, on the
instructions Docker expands). Pure: no I/O. runtime/dockerfile.py makes them
from a Dockerfile's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Self

from runtime.dockerfile_words import expand
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
