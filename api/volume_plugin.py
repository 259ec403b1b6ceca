"""One call of Docker's volume-plugin protocol over a unix socket, as
volumed serves it: a POST of a JSON object to /VolumeDriver.<Operation>; a
non-empty `Err` in the answer is the plugin's refusal (whatever the status)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp


class VolumePluginError(RuntimeError):
    """The plugin refused (its Err) or could not be reached; the message says why."""


async def call_volume_plugin(
    socket_path: Path, operation: str, body: dict[str, Any], timeout: aiohttp.ClientTimeout
) -> dict[str, Any]:
    connector = aiohttp.UnixConnector(path=str(socket_path))
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.post(f"http://volumed/VolumeDriver.{operation}", json=body) as reply,
        ):
            answer = await reply.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = exc or type(exc).__name__
        raise VolumePluginError(f"volumed at {socket_path}: {reason}") from None
    if not isinstance(answer, dict):
        raise VolumePluginError(f"volumed {operation}: not a JSON object")
    if answer.get("Err"):
        raise VolumePluginError(str(answer["Err"]))
    return answer
