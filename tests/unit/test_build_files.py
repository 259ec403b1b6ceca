"""What a COPY or ADD takes from the context and how it lands in an image's
root filesystem (a plain directory here), and the build cache's index."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from runtime.build_cache import BuildCache, CachedLayer, CacheEntry, step_key
from runtime.build_files import (
    ContextError,
    DockerIgnore,
    Ownership,
    copy_sources,
    digest_sources,
    scoped,
    select_sources,
    unpack_archive,
)
from runtime.build_layers import MAX_OPTIONS, fit_mount_options

ME = Ownership(os.getuid(), os.getgid())


def tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    directory = tmp_path / "context"
    tree(
        directory,
        {
            "a.txt": "a",
            "b.txt": "b",
            "app/main.py": "print()",
            "app/debug.log": "noise",
            "app/sub/data.bin": "data",
            "docs/keep.md": "keep",
            "docs/drop.md": "drop",
        },
    )
    (directory / "link-to-a").symlink_to("a.txt")
    return directory


def targets(context: Path, words: list[str], ignore: str = "") -> list[list[str]]:
    sources = select_sources(context, words, DockerIgnore.parse(ignore), add=False)
    return [[s.name, *(e.target for e in s.entries)] for s in sources]


def test_sources_by_name_directory_and_wildcard_honour_dockerignore(context: Path) -> None:
    ignore = "**/*.log\ndocs\n!docs/keep.md\n"
    assert targets(context, ["a.txt"], ignore) == [["a.txt", ""]]
    assert targets(context, ["app"], ignore) == [["app", "main.py", "sub", "sub/data.bin"]]
    assert targets(context, ["docs/"], ignore) == [["docs", "keep.md"]]
    assert targets(context, ["*.txt"], ignore) == [["a.txt", ""], ["b.txt", ""]]
    assert targets(context, ["./app/../a.txt", "/b.txt"]) == [["a.txt", ""], ["b.txt", ""]]
    linked = select_sources(context, ["link-to-a"], DockerIgnore(), add=False)
    assert linked[0].entries[0].source == context / "a.txt"  # a named symlink is followed
    for words, message in (
        (["missing.txt"], "file not found in build context or excluded by .dockerignore"),
        (["app/debug.log"], "excluded by .dockerignore"),
        (["*.nothing"], "no source files were specified"),
        (["../etc/passwd"], "forbidden path outside the build context"),
        (["https://example.com/x"], "COPY from a URL is not supported"),
    ):
        with pytest.raises(ContextError, match=message):
            targets(context, words, ignore)


def test_the_digest_covers_contents_modes_and_names_but_not_mtimes(context: Path) -> None:
    def digest() -> str:
        return digest_sources(select_sources(context, ["."], DockerIgnore(), add=False))

    first = digest()
    os.utime(context / "a.txt", (1, 1))
    assert digest() == first
    (context / "a.txt").chmod(0o600)
    assert digest() != first
    second = digest()
    (context / "a.txt").write_text("A")
    assert digest() != second
    third = digest()
    (context / "b.txt").rename(context / "c.txt")
    assert digest() != third


def test_copy_lands_files_and_directories_as_docker_does(context: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "existing").mkdir(parents=True)
    (context / "app" / "main.py").chmod(0o751)
    os.utime(context / "app" / "sub", ns=(0, 1_000_000_000))

    def copy(words: list[str], dest: str, into: bool, owner: Ownership = ME) -> None:
        sources = select_sources(context, words, DockerIgnore.parse("**/*.log"), add=False)
        copy_sources(root, sources, dest, into, owner)

    copy(["a.txt"], "/renamed.txt", False)
    copy(["a.txt"], "/existing", False)  # an existing directory takes the file in
    copy(["a.txt", "b.txt"], "/new/dir", True)
    copy(["app"], "/srv/app", False)  # a directory's contents, not the directory
    copy(["link-to-a"], "/followed", False)
    copy(["b.txt"], "/tight", False, Ownership(ME.uid, ME.gid, 0o600))
    assert (root / "renamed.txt").read_text() == "a"
    assert (root / "existing" / "a.txt").read_text() == "a"
    assert sorted(p.name for p in (root / "new" / "dir").iterdir()) == ["a.txt", "b.txt"]
    app = root / "srv/app"
    assert sorted(p.relative_to(app).as_posix() for p in app.rglob("*")) == [
        "main.py", "sub", "sub/data.bin",
    ]  # fmt: skip
    assert (root / "srv/app/main.py").stat().st_mode & 0o7777 == 0o751
    assert (root / "srv/app/sub").stat().st_mtime_ns == 1_000_000_000  # kept, after its contents
    assert (root / "followed").read_text() == "a" and not (root / "followed").is_symlink()
    assert (root / "tight").stat().st_mode & 0o777 == 0o600
    (root / "file").write_text("x")
    with pytest.raises(ContextError, match="not a directory"):
        copy(["a.txt"], "/file/below", False)


def test_paths_in_the_image_resolve_inside_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")  # absolute: means the image's /run
    (root / "up").symlink_to("../../../..")
    assert scoped(root, "/var/run/x") == root / "run" / "x"
    assert scoped(root, "/up/etc") == root / "etc"
    assert scoped(root, "../../etc/passwd") == root / "etc" / "passwd"
    (root / "loop").symlink_to("loop")
    with pytest.raises(ContextError, match="too many levels"):
        scoped(root, "/loop/x")
    context = tmp_path / "context"
    tree(context, {"f": "f"})
    sources = select_sources(context, ["f"], DockerIgnore(), add=False)
    copy_sources(root, sources, "/var/run/", True, ME)
    assert (root / "run" / "f").read_text() == "f"  # never the host's /run


def test_add_unpacks_an_archive_without_leaving_the_destination(tmp_path: Path) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, kind, extra in (
            ("pkg/", tarfile.DIRTYPE, ""),
            ("pkg/bin/tool", tarfile.REGTYPE, "tool"),
            ("../../escape.txt", tarfile.REGTYPE, "clamped"),
            ("/abs.txt", tarfile.REGTYPE, "abs"),
            ("pkg/link", tarfile.SYMTYPE, "bin/tool"),
            ("pkg/hard", tarfile.LNKTYPE, "pkg/bin/tool"),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.uid, info.gid, info.mode, info.mtime = kind, ME.uid, ME.gid, 0o640, 7
            payload = extra.encode() if kind == tarfile.REGTYPE else b""
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = extra
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    context = tmp_path / "context"
    context.mkdir()
    (context / "bundle.tgz").write_bytes(data.getvalue())
    (context / "plain.txt").write_text("not an archive")
    sources = select_sources(context, ["bundle.tgz", "plain.txt"], DockerIgnore(), add=True)
    assert [s.archive for s in sources] == [True, False]
    root = tmp_path / "root"
    root.mkdir()
    copy_sources(root, sources, "/opt", True, ME)
    assert (root / "opt/pkg/bin/tool").read_text() == "tool"
    assert (root / "opt/pkg/bin/tool").stat().st_mode & 0o777 == 0o640
    assert (root / "opt/escape.txt").read_text() == "clamped"
    assert (root / "opt/abs.txt").read_text() == "abs"
    assert (root / "opt/pkg/link").readlink().as_posix() == "bin/tool"
    assert (root / "opt/pkg/hard").stat().st_ino == (root / "opt/pkg/bin/tool").stat().st_ino
    assert (root / "opt/pkg").stat().st_mtime == 7
    assert (root / "opt/plain.txt").read_text() == "not an archive"
    assert not (tmp_path / "escape.txt").exists()
    unpack_archive(root, context / "bundle.tgz", "/again")
    assert (root / "again/pkg/bin/tool").exists()


def test_the_cache_index_round_trips_merges_forgets_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "state" / "build-cache.json"
    layer = CachedLayer("sha256:" + "a" * 64, 10, "application/x", "sha256:" + "b" * 64)
    key = step_key("sha256:parent", "COPY", "sha256:inputs")
    assert key != step_key("sha256:parent", "COPY", "sha256:other")
    assert key != step_key("sha256:other", "COPY", "sha256:inputs")
    one = BuildCache(path, max_entries=2)
    assert one.get(key) is None
    one.put(key, CacheEntry({"config": {}}, layer))
    two = BuildCache(path, max_entries=2)  # another build, started meanwhile
    two.put("k2", CacheEntry({"n": 2}, None))
    one.save()
    two.save()  # merges: both builds' entries are kept
    merged = BuildCache(path, max_entries=2)
    assert merged.get(key) == CacheEntry({"config": {}}, layer)
    assert merged.get("k2") == CacheEntry({"n": 2}, None)
    merged.forget(key)
    merged.put("k3", CacheEntry({"n": 3}, None))
    merged.save()
    assert BuildCache(path).get(key) is None
    three = BuildCache(path, max_entries=2)
    three.put("k4", CacheEntry({"n": 4}, None))
    three.save()  # over the bound: the least recently used goes
    assert BuildCache(path).get("k2") is None and BuildCache(path).get("k4") is not None
    path.write_text("{not json")
    assert BuildCache(path).get("k4") is None  # a damaged index is an empty one


def test_overlay_options_of_many_layers_fit_in_a_page() -> None:
    base = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
    short = [
        "index=off",
        f"workdir={base}/9/work",
        f"upperdir={base}/9/fs",
        f"lowerdir={base}/1/fs",
    ]
    assert fit_mount_options(short) == (short, None)
    lower = ":".join(f"{base}/{n}/fs" for n in range(100, 1, -1))
    fitted, cwd = fit_mount_options(["index=off", f"upperdir={base}/101/fs", f"lowerdir={lower}"])
    assert cwd == base and len(",".join(fitted)) < MAX_OPTIONS
    assert fitted[:2] == ["index=off", "upperdir=101/fs"]
    assert fitted[2].startswith("lowerdir=100/fs:99/fs:") and fitted[2].endswith(":2/fs")
