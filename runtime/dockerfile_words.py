"""Docker's word rules for Dockerfile arguments: variable substitution with
quotes and backslashes (moby/buildkit's shell lexer), splitting into words,
`--flag=value` prefixes, and Go durations ("1m30s"). Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z0-9_]+")
_FLAG = re.compile(r"--([^\s=]+(?:=\S*)?)\s*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


class _Lexer:
    """One word: quotes and escapes consumed, $VAR / ${VAR} / ${VAR:-word} /
    ${VAR-word} / ${VAR:+word} / ${VAR+word} / ${VAR:?msg} / ${VAR?msg}
    substituted. Single quotes keep everything literal; inside double quotes
    a backslash escapes only ", $ and itself (as in the shell)."""

    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.text = text
        self.pos = 0
        self.env = env

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        ch = self._peek()
        self.pos += len(ch)
        return ch

    def word(self, stop: str = "") -> str:
        out: list[str] = []
        while (ch := self._peek()) and not (stop and ch in stop):
            self.pos += 1
            if ch == "'":
                out.append(self._single_quoted())
            elif ch == '"':
                out.append(self._double_quoted())
            elif ch == "\\":
                out.append(self._next())  # a backslash at the very end vanishes
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
        return "".join(out)

    def _single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise ValueError("unexpected end of statement while looking for matching single-quote")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            ch = self._next()
            if not ch:
                raise ValueError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
            elif ch == "\\":
                following = self._peek()
                if following in ('"', "$", "\\"):
                    out.append(self._next())
                elif following:
                    out.append("\\")
            else:
                out.append(ch)

    def _dollar(self) -> str:
        if self._peek() != "{":
            match = _NAME.match(self.text, self.pos)
            if match is None:
                return "$"  # "$" before anything that is not a name is itself
            self.pos = match.end()
            return self.env.get(match.group(), "")
        self.pos += 1
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise ValueError(f"bad substitution in {self.text!r}")
        name = match.group()
        self.pos = match.end()
        modifier = self._next()
        if modifier == "}":
            return self.env.get(name, "")
        if modifier == ":":
            modifier += self._next()
        if modifier not in (":-", "-", ":+", "+", ":?", "?"):
            raise ValueError(f"bad substitution in {self.text!r}")
        word = self.word(stop="}")
        if self._next() != "}":
            raise ValueError(f"missing '}}' in {self.text!r}")
        is_set = name in self.env
        value = self.env.get(name, "")
        present = bool(value) if modifier.startswith(":") else is_set
        if modifier.endswith("-"):
            return value if present else word
        if modifier.endswith("+"):
            return word if present else ""
        if not present:
            raise ValueError(f"{name}: {word or 'is not set'}")
        return value


def expand(word: str, env: Mapping[str, str]) -> str:
    """Docker's processing of one word; ValueError on bad syntax."""
    return _Lexer(word, env).word()


def split_words(text: str) -> list[str]:
    """Split at whitespace outside quotes, keeping quotes and backslashes (the
    words are expanded later, which consumes them)."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\" and quote != "'":
            current.append(ch)
            escaped = True
        elif quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def take_flags(value: str) -> tuple[dict[str, str], str]:
    """Leading `--name=value` (or `--name`, meaning "true") words, and the rest."""
    flags: dict[str, str] = {}
    rest = value.strip()
    while (match := _FLAG.match(rest)) is not None:
        name, equals, flag_value = match.group(1).partition("=")
        flags[name] = flag_value if equals else "true"
        rest = rest[match.end() :]
    return flags, rest


def parse_duration(text: str) -> int:
    """A Go duration ("30s", "1m30s", "1.5h", "0") in nanoseconds."""
    if text == "0":
        return 0
    position, total = 0, 0.0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            raise ValueError(f"invalid duration {text!r} (e.g. 30s, 1m30s, 500ms)")
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError(f"invalid duration {text!r} (e.g. 30s, 1m30s, 500ms)")
    return int(total)
