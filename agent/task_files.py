"""Secrets and configs on the node: each task that uses them gets a tmpfs of
its own (never on disk), holding a file per secret or config with the owner
and mode its spec asks, bind-mounted read-only into the container (secrets
at /run/secrets/<name>, configs at their target, /<name> by default). The
tmpfs goes when the task's container is removed."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

Obj = dict[str, Any]


class TaskFilesError(RuntimeError):
    """A secret or config the task needs is not available; the message names it."""


async def _run(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise TaskFilesError(f"{' '.join(argv)}: {err.decode().strip()}")


def references(task: Obj) -> list[tuple[str, Obj]]:
    container = (task.get("Spec") or {}).get("ContainerSpec") or {}
    refs = [("secret", r) for r in container.get("Secrets") or []]
    return refs + [("config", r) for r in container.get("Configs") or []]


class TaskFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data: dict[str, bytes] = {}  # "secret:<id>" / "config:<id>" -> content

    def learn(self, secrets: list[Obj], configs: list[Obj]) -> None:
        """What the dispatcher sent for this node's tasks (and nothing else)."""
        self.data = {
            f"{kind}:{item['ID']}": base64.b64decode(str(item.get("Data") or ""))
            for kind, items in (("secret", secrets), ("config", configs))
            for item in items
        }

    async def prepare(self, task: Obj) -> list[Obj]:
        """The task's files on a fresh tmpfs; the bind mounts that show them."""
        refs = references(task)
        if not refs:
            return []
        directory = self.root / task["ID"]
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.path.ismount(directory):
            await _run("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(directory))
        mounts = []
        for index, (kind, ref) in enumerate(refs):
            object_id = str(ref.get("SecretID") if kind == "secret" else ref.get("ConfigID"))
            name = str(ref.get("SecretName") if kind == "secret" else ref.get("ConfigName"))
            content = self.data.get(f"{kind}:{object_id}")
            if content is None:
                raise TaskFilesError(f"{kind} {name or object_id} is not available to this node")
            target_file = ref.get("File") or {}
            file_name = str(target_file.get("Name") or name)
            path = directory / f"{kind}-{index}"
            path.write_bytes(content)
            os.chown(path, int(target_file.get("UID") or 0), int(target_file.get("GID") or 0))
            path.chmod(int(target_file.get("Mode") or 0o444))
            if kind == "secret":
                target = file_name if file_name.startswith("/") else f"/run/secrets/{file_name}"
            else:
                target = file_name if file_name.startswith("/") else f"/{file_name}"
            mounts.append({"Type": "bind", "Source": str(path), "Target": target, "ReadOnly": True})
        return mounts

    async def release(self, task_id: str) -> None:
        directory = self.root / task_id
        if os.path.ismount(directory):
            await _run("umount", "-l", str(directory))
        if directory.exists():
            directory.rmdir()
