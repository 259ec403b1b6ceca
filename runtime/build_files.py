"""The files of a build: the context filtered by .dockerignore, what a COPY or
ADD takes from it (with a digest of contents, modes and names for the build
cache), and copying that into a mounted root filesystem.

Paths inside the image resolve as they would inside the container: an
absolute symlink in the image points into the image, never at the host
(`scoped`). Blocking I/O: the builder runs these in a thread.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from api.dockerignore import ContextError as ContextError
from api.dockerignore import DockerIgnore as DockerIgnore
from runtime.oci_spec import resolve_user

MAX_SYMLINKS = 255


# ---- what a COPY takes ---------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    source: Path  # in the context
    target: str  # relative to where the source lands ("" for a file source)
    kind: str  # "dir" | "file" | "symlink"
    mode: int  # permission bits, setuid/setgid/sticky included
    link: str = ""  # a symlink's target


@dataclass(frozen=True)
class Source:
    name: str  # the base name (a file copied into a directory keeps it)
    is_dir: bool  # a directory's contents are copied, not the directory
    archive: bool  # ADD of a local tar archive: unpacked at the destination
    entries: tuple[Entry, ...]


def _entry(path: Path, target: str) -> Entry | None:
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        return Entry(path, target, "dir", mode)
    if stat.S_ISREG(info.st_mode):
        return Entry(path, target, "file", mode)
    if stat.S_ISLNK(info.st_mode):
        return Entry(path, target, "symlink", mode, str(path.readlink()))
    return None  # sockets, fifos, devices: Docker's context has none of them


def _walk(context: Path, directory: Path, ignore: DockerIgnore) -> list[Entry]:
    """A directory's entries, parents first; an ignored directory stays if a
    `!` exception keeps something inside it."""
    entries: list[Entry] = []
    for child in sorted(directory.iterdir()):
        relative = child.relative_to(context).as_posix()
        entry = _entry(child, child.relative_to(directory).as_posix())
        if entry is None:
            continue
        if entry.kind == "dir":
            inner = _walk(context, child, ignore)
            if inner or not ignore.ignored(relative):
                entries.append(entry)
                entries += [
                    Entry(e.source, f"{entry.target}/{e.target}", e.kind, e.mode, e.link)
                    for e in inner
                ]
        elif not ignore.ignored(relative):
            entries.append(entry)
    return entries


def scoped(root: Path, path: str) -> Path:
    """The host path of `path` inside `root`, every symlink on the way resolved
    within `root` (absolute links restart at root, ".." stops there)."""
    pending = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            hops += 1
            if hops > MAX_SYMLINKS:
                raise ContextError(f"too many levels of symbolic links in {path}")
            target = str(candidate.readlink())
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def _matches(pattern: str, relative: str) -> bool:
    """Go's filepath.Match on whole paths: wildcards never cross "/"."""
    want, have = pattern.split("/"), relative.split("/")
    return len(want) == len(have) and all(
        fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=True)
    )


def select_sources(
    context: Path, words: list[str], ignore: DockerIgnore, add: bool
) -> list[Source]:
    """What the sources of a COPY (or ADD) name in the context."""
    keyword = "ADD" if add else "COPY"
    sources: list[Source] = []
    for word in words:
        if re.match(r"^[a-z][a-z0-9+.-]*://", word):
            raise ContextError(f"{keyword} from a URL is not supported: {word}")
        cleaned = posixpath.normpath(word)
        if cleaned == ".." or cleaned.startswith("../"):
            raise ContextError(f"forbidden path outside the build context: {word}")
        relative = cleaned.lstrip("/") if cleaned not in ("/", ".") else ""
        if any(ch in relative for ch in "*?["):
            everything = _walk(context, context, ignore)
            matched = [e.target for e in everything if _matches(relative, e.target)]
            if not matched:
                raise ContextError(f"no source files were specified by {word}")
            sources += [_source(context, m, ignore, add, word) for m in matched]
        else:
            sources.append(_source(context, relative, ignore, add, word))
    return sources


def _source(context: Path, relative: str, ignore: DockerIgnore, add: bool, word: str) -> Source:
    missing = ContextError(f"file not found in build context or excluded by .dockerignore: {word}")
    path = scoped(context, relative)  # a symlink named as a source is followed
    if not path.exists():
        raise missing
    name = posixpath.basename(relative) or "."
    if path.is_dir():
        return Source(name, True, False, tuple(_walk(context, path, ignore)))
    inside = path.relative_to(context).as_posix()
    if ignore.ignored(inside) or not path.is_file():
        raise missing
    entry = _entry(path, "")
    assert entry is not None  # a regular file
    return Source(name, False, add and tarfile.is_tarfile(path), (entry,))


def digest_sources(sources: list[Source]) -> str:
    """sha256 of the names, kinds, modes and contents of what is copied (not
    mtimes: touching a file does not invalidate the cache, as in Docker)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(json.dumps([source.name, source.is_dir, source.archive]).encode())
        for entry in source.entries:
            content = ""
            if entry.kind == "file":
                with open(entry.source, "rb") as f:
                    content = hashlib.file_digest(f, "sha256").hexdigest()
            row = [entry.target, entry.kind, entry.mode, entry.link, content]
            digest.update(json.dumps(row).encode())
    return "sha256:" + digest.hexdigest()


# ---- writing into the image ----------------------------------------------------


@dataclass(frozen=True)
class Ownership:
    uid: int = 0
    gid: int = 0
    mode: int | None = None  # --chmod


def ownership(root: Path, chown: str, mode: int | None) -> Ownership:
    """--chown through the image's /etc/passwd and /etc/group; a user alone
    gives gid = uid, as Docker documents. SpecError if a name is unknown."""
    if not chown:
        return Ownership(0, 0, mode)
    user, colon, _ = chown.partition(":")

    def text(relative: str) -> str | None:
        path = scoped(root, relative)
        return path.read_text() if path.is_file() else None

    resolved = resolve_user(chown if colon else user, text("etc/passwd"), text("etc/group"), [])
    uid = int(resolved["uid"])
    return Ownership(uid, int(resolved["gid"]) if colon else uid, mode)


def _replace(path: Path, is_dir: bool) -> None:
    """Make room as tar extraction does: whatever is there goes, except a
    directory where a directory comes."""
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        if not is_dir:
            shutil.rmtree(path)
        return
    path.unlink()


def make_dirs(root: Path, path: str, owner: Ownership) -> Path:
    """mkdir -p inside root; the directories made get the owner."""
    current = ""
    for part in [p for p in path.split("/") if p not in ("", ".")]:
        current = f"{current}/{part}"
        host = scoped(root, current)
        if not os.path.lexists(host):
            host.mkdir(mode=0o755)
            os.chown(host, owner.uid, owner.gid)
        elif not host.is_dir():
            raise ContextError(f"cannot copy into {current}: it is not a directory")
    return scoped(root, path)


def _write(root: Path, entry: Entry, destination: str, owner: Ownership) -> None:
    parent, name = posixpath.split(destination.rstrip("/"))
    path = make_dirs(root, parent, Ownership(owner.uid, owner.gid)) / name
    _replace(path, entry.kind == "dir")
    if entry.kind == "dir":
        path.mkdir(exist_ok=True)
    elif entry.kind == "file":
        shutil.copyfile(entry.source, path, follow_symlinks=False)
    else:
        path.symlink_to(entry.link)
    os.lchown(path, owner.uid, owner.gid)  # before chmod: chown clears setuid
    if entry.kind != "symlink":
        path.chmod(owner.mode if owner.mode is not None else entry.mode)
    info = entry.source.lstat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)


def copy_sources(
    root: Path, sources: list[Source], dest: str, dest_is_dir: bool, owner: Ownership
) -> None:
    """COPY/ADD into the mounted image at `root`: `dest` is absolute; a file
    lands at `dest` itself unless `dest_is_dir` or `dest` is a directory."""
    for source in sources:
        if source.is_dir or source.archive:
            make_dirs(root, dest, owner)
            if source.archive:
                unpack_archive(root, source.entries[0].source, dest)
                continue
            for entry in source.entries:
                _write(root, entry, posixpath.join(dest, entry.target), owner)
            # Writing into a directory moved its mtime: set them again, deepest first.
            for entry in reversed(source.entries):
                if entry.kind == "dir":
                    info = entry.source.lstat()
                    placed = scoped(root, posixpath.join(dest, entry.target))
                    os.utime(placed, ns=(info.st_atime_ns, info.st_mtime_ns))
            continue
        into = dest_is_dir or scoped(root, dest).is_dir()
        _write(root, source.entries[0], posixpath.join(dest, source.name) if into else dest, owner)


def unpack_archive(root: Path, archive: Path, dest: str) -> None:
    """ADD's unpacking of a local (possibly compressed) tar into `dest`: names
    cannot leave it, owners and modes come from the archive."""
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    with tarfile.open(archive) as tar:
        for member in tar:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name:
                continue
            parent, base = posixpath.split(posixpath.join(dest, name))
            path = make_dirs(root, parent, Ownership()) / base
            _replace(path, member.isdir())
            if member.isdir():
                path.mkdir(exist_ok=True)
                directories.append((path, member))
            elif member.isreg():
                source = tar.extractfile(member)
                assert source is not None  # a regular file has data
                with source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out)
            elif member.issym():
                path.symlink_to(member.linkname)
            elif member.islnk():
                linked = posixpath.normpath("/" + member.linkname).lstrip("/")
                os.link(scoped(root, posixpath.join(dest, linked)), path, follow_symlinks=False)
            elif member.isfifo():
                os.mkfifo(path)
            elif member.ischr() or member.isblk():
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(path, kind | member.mode, os.makedev(member.devmajor, member.devminor))
            else:
                continue
            os.lchown(path, member.uid, member.gid)
            if not member.issym():
                path.chmod(member.mode & 0o7777)
                os.utime(path, (member.mtime, member.mtime))
    for path, member in reversed(directories):
        os.utime(path, (member.mtime, member.mtime))
