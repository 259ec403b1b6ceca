"""Keeping child processes running, as the lab's supervisor and volumed both
do: the pause before restarting one that died, and stopping one by PID."""

from __future__ import annotations

import asyncio
import contextlib
import signal

MIN_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0
HEALTHY_RUN_SECONDS = 10.0  # ran this long before dying: restart promptly


def next_backoff(
    previous: float, ran_seconds: float, longest: float = MAX_BACKOFF_SECONDS
) -> float:
    """The pause before a restart: doubles while a process keeps dying young
    (so one that cannot start does not spin), up to `longest`."""
    if ran_seconds >= HEALTHY_RUN_SECONDS:
        return MIN_BACKOFF_SECONDS
    return min(max(previous * 2, MIN_BACKOFF_SECONDS), longest)


async def stop_process(process: asyncio.subprocess.Process | None, grace: float) -> bool:
    """SIGTERM, a grace period, then SIGKILL; False if it came to that."""
    if process is None or process.returncode is not None:
        return True
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return False
    return True
