"""A build context's .dockerignore, with Docker's rules: the client leaves
ignored files out of the tar it sends, and the builder checks again."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


class ContextError(ValueError):
    """A build context that cannot be used (a bad .dockerignore, a COPY or ADD
    that cannot be done); the builder adds the Dockerfile line."""


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's patternmatcher: `*` and `?` stop at "/", `**` crosses any
    number of directories (`**/x` matches x at the top too)."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*" and pattern[i + 1 : i + 2] == "*":
            i += 2
            if pattern[i : i + 1] == "/":
                i += 1
            out.append(".*" if i >= len(pattern) else "(.*/)?")
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch in ".+()|{}$^":
            out.append(re.escape(ch))
        else:
            out.append(ch)  # letters, "/", and [...] classes as they are
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise ContextError(f".dockerignore: bad pattern {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class DockerIgnore:
    rules: tuple[tuple[re.Pattern[str], bool], ...] = ()  # (pattern, is an exception "!")

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            line = line[1:].strip() if exception else line
            if not line:
                raise ContextError('.dockerignore: illegal exclusion pattern: "!"')
            cleaned = posixpath.normpath(line)
            if len(cleaned) > 1 and cleaned.startswith("/"):
                cleaned = cleaned.lstrip("/")
            rules.append((_pattern_regex(cleaned), exception))
        return cls(tuple(rules))

    @classmethod
    def load(cls, context: Path) -> DockerIgnore:
        path = context / ".dockerignore"
        return cls.parse(path.read_text()) if path.is_file() else cls()

    def ignored(self, relative: str) -> bool:
        """The last matching pattern wins; a pattern that matches a directory
        also matches everything inside it."""
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        verdict = False
        for regex, exception in self.rules:
            if any(regex.match(prefix) for prefix in prefixes):
                verdict = not exception
        return verdict
