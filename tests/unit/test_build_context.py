"""The build context clusterctl sends: a tar of the directory, minus what
.dockerignore names (Docker's rules: last match wins, `!` re-includes)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from clusterctl.image_commands import context_tar, ignored


def test_dockerignore_rules() -> None:
    patterns = ["*.log", "build", "!build/keep.txt", "**/*.tmp", "docs/*.md"]
    assert ignored("x.log", patterns)
    assert not ignored("src/x.log", patterns)  # *.log is for the top level only
    assert ignored("build/out.bin", patterns)  # a directory covers what is inside
    assert not ignored("build/keep.txt", patterns)
    assert ignored("a/b/c.tmp", patterns)
    assert ignored("docs/readme.md", patterns) and not ignored("docs/x/readme.md", patterns)
    assert not ignored("main.py", patterns)


def test_the_context_tar_leaves_out_ignored_files(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text("secret*\n")
    (tmp_path / "app.txt").write_text("app")
    (tmp_path / "secret.key").write_text("no")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data").write_text("d")
    with tarfile.open(fileobj=io.BytesIO(context_tar(tmp_path))) as tar:
        names = set(tar.getnames())
    assert names == {"Dockerfile", ".dockerignore", "app.txt", "sub", "sub/data"}
