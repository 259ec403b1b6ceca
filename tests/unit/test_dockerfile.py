"""Dockerfiles: parsing into typed instructions with their lines, Docker's
variable expansion, .dockerignore patterns, build args, and the config each
metadata instruction leaves."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.build_config import (
    BuildArgs,
    add_history,
    apply_metadata,
    canonical,
    config_digest,
    scratch_config,
)
from runtime.build_files import DockerIgnore
from runtime.dockerfile import parse_dockerfile
from runtime.dockerfile_instructions import (
    Arg,
    BuildError,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from runtime.dockerfile_words import expand, parse_duration, split_words

FULL = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS build
COPY --chown=app:app a.txt dir/ /dest/
ADD ["bundle.tar", "/opt/"]
RUN echo one \\
    && echo two
RUN ["sh", "-c", "exit 0"]
ENV A=1 B="two words" C=three\\ words
ENV LEGACY the rest of the line
LABEL org.example.v=1 "quoted key"=x
ARG WHO=nobody OTHER
WORKDIR /srv
USER 1000:1000
EXPOSE 80 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --retries=3 CMD wget -q x
ENTRYPOINT ["/entry"]
cmd echo lower-case keyword
"""


def test_every_instruction_is_parsed_with_its_line() -> None:
    parsed = parse_dockerfile(FULL)
    kinds = [(type(i).__name__, i.line) for i in parsed]
    assert kinds == [
        ("Arg", 2), ("From", 3), ("Copy", 4), ("Copy", 5), ("Run", 6), ("Run", 8),
        ("Env", 9), ("Env", 10), ("Label", 11), ("Arg", 12), ("Workdir", 13), ("User", 14),
        ("Expose", 15), ("Volume", 16), ("StopSignal", 17), ("Shell", 18),
        ("Healthcheck", 19), ("Entrypoint", 20), ("Cmd", 21),
    ]  # fmt: skip
    by_line = {i.line: i for i in parsed}
    assert by_line[2] == Arg("Dockerfile:2", "ARG BASE=busybox", (("BASE", "busybox"),))
    assert by_line[3] == From("Dockerfile:3", "FROM ${BASE} AS build", "${BASE}", "build")
    copy = by_line[4]
    assert isinstance(copy, Copy)
    assert (copy.sources, copy.dest, copy.chown, copy.add) == (
        ("a.txt", "dir/"),
        "/dest/",
        "app:app",
        False,
    )
    add = by_line[5]
    assert isinstance(add, Copy) and (add.sources, add.dest, add.add) == (
        ("bundle.tar",),
        "/opt/",
        True,
    )
    run = by_line[6]
    assert isinstance(run, Run) and run.shell_form
    assert run.argv(["/bin/sh", "-c"]) == ["/bin/sh", "-c", "echo one     && echo two"]
    exec_run = by_line[8]
    assert isinstance(exec_run, Run) and exec_run.argv(["ignored"]) == ["sh", "-c", "exit 0"]
    assert by_line[12] == Arg(
        "Dockerfile:12", "ARG WHO=nobody OTHER", (("WHO", "nobody"), ("OTHER", None))
    )
    check = by_line[19]
    assert isinstance(check, Healthcheck)
    assert check.config() == {
        "Test": ["CMD-SHELL", "wget -q x"],
        "Interval": 30_000_000_000,
        "Timeout": 90_000_000_000,
        "StartPeriod": 500_000_000,
        "Retries": 3,
    }
    assert by_line[21].text == "CMD echo lower-case keyword"


def test_env_and_label_pairs_expand_and_unquote() -> None:
    parsed = {i.line: i for i in parse_dockerfile(FULL)}
    env = parsed[9].expanded({})
    assert isinstance(env, Env)
    assert env.pairs == (("A", "1"), ("B", "two words"), ("C", "three words"))
    legacy = parsed[10].expanded({})
    assert isinstance(legacy, Env) and legacy.pairs == (("LEGACY", "the rest of the line"),)
    label = parsed[11].expanded({})
    assert isinstance(label, Label)
    assert label.pairs == (("org.example.v", "1"), ("quoted key", "x"))
    source = parse_dockerfile("FROM x\nCOPY $SRC ${DEST:-/default/}\n")[1].expanded({"SRC": "s"})
    assert isinstance(source, Copy) and (source.sources, source.dest) == (("s",), "/default/")


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}x", "ax"),
        ("pre-$A-post", "pre-a-post"),
        ("$UNSET", ""),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:-$A/x}", "a/x"),
        ("'$A literal'", "$A literal"),
        ('"$A in double"', "a in double"),
        (r'"a \"quote\" \$A"', 'a "quote" $A'),
        (r'"keep \n"', r"keep \n"),
        (r"\$A", "$A"),
        ("$", "$"),
        ("cost $5", "cost "),  # a digit is a name character, as in Docker
        ("a$/b", "a$/b"),
    ],
)
def test_variable_expansion_follows_docker(word: str, expected: str) -> None:
    assert expand(word, {"A": "a", "EMPTY": ""}) == expected


@pytest.mark.parametrize(
    "word", ["${", "${A", "${A:x}", "${!A}", "'open", '"open', "${U:?must be set}"]
)
def test_bad_substitutions_are_errors(word: str) -> None:
    with pytest.raises(ValueError):
        expand(word, {"A": "a"})


def test_words_flags_and_durations() -> None:
    assert split_words("a \"b c\" d\\ e 'f g'") == ["a", '"b c"', "d\\ e", "'f g'"]
    assert parse_duration("1h2m3.5s") == 3_723_500_000_000
    assert parse_duration("0") == 0 and parse_duration("250us") == 250_000
    with pytest.raises(ValueError):
        parse_duration("10")


def test_a_last_line_without_newline_and_a_trailing_continuation_still_count() -> None:
    parsed = parse_dockerfile("FROM x\n\n  # indented comment\nRUN a \\\n  # inside\n  b \\")
    assert [type(i) for i in parsed] == [From, Run]
    assert parsed[1].line == 4 and isinstance(parsed[1], Run)
    assert parsed[1].args == ("a   b",)
    assert isinstance(parse_dockerfile("FROM x\nUSER app")[1], User)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM x\nRUN true\nFOO bar\n", "Dockerfile:3: unknown instruction: FOO"),
        ("FROM x\nONBUILD RUN true\n", "Dockerfile:2: not supported: ONBUILD"),
        ("FROM\n", "Dockerfile:1: FROM requires either one or three arguments"),
        ("FROM a b\n", "Dockerfile:1: FROM requires"),
        ("RUN true\nFROM x\n", "Dockerfile:1: RUN before FROM"),
        ("FROM x\nFROM y\n", "Dockerfile:2: multi-stage builds"),
        ("# only a comment\n", "Dockerfile: no FROM instruction"),
        ("FROM x\nCOPY onlyone\n", "Dockerfile:2: COPY requires at least two arguments"),
        ("FROM x\nCOPY --from=b a /\n", "Dockerfile:2: COPY --from (multi-stage builds) is not"),
        ("FROM x\nCOPY --bogus=1 a /\n", "Dockerfile:2: unknown flag: --bogus"),
        ("FROM x\nRUN --mount=type=cache true\n", "Dockerfile:2: RUN --mount is not supported"),
        ("FROM x\nRUN\n", "Dockerfile:2: RUN requires at least one argument"),
        ("FROM x\nRUN []\n", "Dockerfile:2: RUN requires at least one argument"),
        ("FROM x\nENV ONLYNAME\n", "Dockerfile:2: ENV must have two arguments"),
        ("FROM x\nENV A=1 B\n", "Dockerfile:2: syntax error - can't find = in 'B'"),
        ("FROM x\nUSER a b\n", "Dockerfile:2: USER requires exactly one argument"),
        ("FROM x\nSHELL /bin/sh -c\n", "Dockerfile:2: SHELL requires the JSON form"),
        ("FROM x\nHEALTHCHECK --interval=5 CMD true\n", "Dockerfile:2: HEALTHCHECK --interval"),
        ("FROM x\nHEALTHCHECK --retries=-1 CMD true\n", "Dockerfile:2: HEALTHCHECK --retries"),
        ("FROM x\nHEALTHCHECK NONE true\n", "Dockerfile:2: HEALTHCHECK NONE takes no"),
        ("FROM x\nHEALTHCHECK RUN true\n", "Dockerfile:2: unknown type 'RUN' in HEALTHCHECK"),
        ("FROM x\nHEALTHCHECK CMD\n", "Dockerfile:2: HEALTHCHECK CMD requires a command"),
        ("FROM x\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(BuildError) as caught:
        parse_dockerfile(text)
    assert str(caught.value).startswith(message), str(caught.value)


def test_errors_found_while_expanding_name_the_line_too() -> None:
    copy = parse_dockerfile("FROM x\n\nCOPY ${A:?needs-A} /\n", name="sub/Dockerfile.dev")[1]
    with pytest.raises(BuildError, match=r"^sub/Dockerfile.dev:3: A: needs-A$"):
        copy.expanded({})
    workdir = parse_dockerfile("FROM x\nWORKDIR $NOTHING\n")[1]
    with pytest.raises(BuildError, match="Dockerfile:2: WORKDIR requires a non-empty value"):
        workdir.expanded({})


def test_dockerignore_follows_docker() -> None:
    ignore = DockerIgnore.parse(
        "# comment\n*.log\n/build\n!build/keep.txt\n**/*.tmp\ndocs/*.md\n./cache/\nsecret?\n"
    )
    assert ignore.ignored("x.log") and not ignore.ignored("src/x.log")
    assert ignore.ignored("build") and ignore.ignored("build/out/bin")
    assert not ignore.ignored("build/keep.txt")
    assert ignore.ignored("a.tmp") and ignore.ignored("a/b/c.tmp")
    assert ignore.ignored("docs/readme.md") and not ignore.ignored("docs/x/readme.md")
    assert ignore.ignored("cache/anything") and ignore.ignored("secret1")
    assert not ignore.ignored("secret12") and not ignore.ignored("main.py")
    everything_but = DockerIgnore.parse("*\n!src\n!src/**\nsrc/gen/**\n")
    assert everything_but.ignored("README") and not everything_but.ignored("src/a/b.py")
    assert everything_but.ignored("src/gen/x.py")
    assert not DockerIgnore().ignored("anything")


def test_build_args_defaults_globals_and_env_precedence() -> None:
    parsed = parse_dockerfile("ARG BASE=busybox\nARG V=1\nFROM $BASE:$V\nARG V\nARG WHO=nobody X\n")
    args = BuildArgs({"V": "2", "UNUSED": "u"})
    global_base, global_v, from_, in_stage_v, in_stage = parsed
    assert isinstance(global_base, Arg) and isinstance(global_v, Arg)
    args.declare(global_base.expanded(args.global_values), in_stage=False)
    args.declare(global_v.expanded(args.global_values), in_stage=False)
    assert from_.expanded(args.global_values) == From("Dockerfile:3", from_.text, "busybox:2")
    assert args.values == {}  # global ARGs are not visible in the stage...
    assert isinstance(in_stage_v, Arg) and isinstance(in_stage, Arg)
    args.declare(in_stage_v, in_stage=True)  # ...until declared again there
    args.declare(in_stage, in_stage=True)
    assert args.values == {"V": "2", "WHO": "nobody"}  # X has no value
    config = {"config": {"Env": ["WHO=env-wins", "PATH=/bin"]}}
    assert args.expansion_env(config) == {"V": "2", "WHO": "env-wins", "PATH": "/bin"}
    assert args.run_env(config) == ["V=2"]
    assert args.unused() == ["UNUSED"]


def _apply(config: dict[str, Any], line: str) -> dict[str, Any]:
    instruction: Instruction = parse_dockerfile(f"FROM x\n{line}\n")[1]
    return apply_metadata(config, instruction.expanded({}))


def test_metadata_instructions_change_the_config() -> None:
    config: dict[str, Any] = {"config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"]}}
    config = _apply(config, "ENV A=2 B=3")
    assert config["config"]["Env"] == ["PATH=/bin", "A=2", "B=3"]  # replaced in place
    config = _apply(_apply(config, "WORKDIR /srv"), "WORKDIR app/../web")
    assert config["config"]["WorkingDir"] == "/srv/web"
    config = _apply(config, "ENTRYPOINT /entry --flag")
    assert config["config"]["Entrypoint"] == ["/bin/sh", "-c", "/entry --flag"]
    assert "Cmd" not in config["config"]  # a new ENTRYPOINT drops the base's CMD
    config = _apply(_apply(config, 'SHELL ["/bin/ash", "-c"]'), "CMD run me")
    assert config["config"]["Cmd"] == ["/bin/ash", "-c", "run me"]
    config = _apply(config, "EXPOSE 80 8000-8002/udp")
    assert sorted(config["config"]["ExposedPorts"]) == [
        "80/tcp", "8000/udp", "8001/udp", "8002/udp",
    ]  # fmt: skip
    config = _apply(_apply(config, "LABEL a=1"), "LABEL b=2")
    assert config["config"]["Labels"] == {"a": "1", "b": "2"}
    config = _apply(_apply(config, "USER app:app"), "STOPSIGNAL SIGQUIT")
    assert (config["config"]["User"], config["config"]["StopSignal"]) == ("app:app", "SIGQUIT")
    config = _apply(_apply(config, "VOLUME /data /logs"), "HEALTHCHECK NONE")
    assert config["config"]["Volumes"] == {"/data": {}, "/logs": {}}
    assert config["config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert _apply(config, "MAINTAINER someone")["author"] == "someone"
    with pytest.raises(BuildError, match="Dockerfile:2: invalid signal 'SIGNOPE'"):
        _apply(config, "STOPSIGNAL SIGNOPE")
    with pytest.raises(BuildError, match="Dockerfile:2: invalid port"):
        _apply(config, "EXPOSE eighty")
    with pytest.raises(BuildError, match="Dockerfile:2: invalid protocol"):
        _apply(config, "EXPOSE 80/xyz")


def test_instruction_types_cover_the_metadata_set() -> None:
    kinds = {type(i) for i in parse_dockerfile(FULL)}
    assert {Cmd, Entrypoint, Expose, Shell, StopSignal, User, Volume, Workdir} <= kinds


def test_history_and_canonical_config_make_a_stable_image_id() -> None:
    config = scratch_config()
    assert config["rootfs"] == {"type": "layers", "diff_ids": []} and config["os"] == "linux"
    with_layer = add_history(config, "COPY a /a", "2024-01-01T00:00:00Z", "sha256:" + "1" * 64)
    empty = add_history(with_layer, "ENV A=1", "2024-01-01T00:00:01Z", None)
    assert empty["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64]
    assert [h.get("empty_layer", False) for h in empty["history"]] == [False, True]
    assert empty["created"] == "2024-01-01T00:00:01Z"
    reordered = dict(reversed(list(empty.items())))
    assert canonical(reordered) == canonical(empty)
    assert config_digest(reordered) == config_digest(empty)
    assert b" " not in canonical({"a": [1, 2]})
