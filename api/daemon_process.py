"""What every Shoal daemon's process does before its work starts: log to
stderr in one format, and turn SIGTERM and SIGINT into cancelling the main
task, so that the daemon's `async with` closes what it opened (sockets,
child processes, the store) instead of the process dying in the middle."""

from __future__ import annotations

import asyncio
import logging
import signal


def log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def cancel_on_signals() -> None:
    """From inside the main task: SIGTERM and SIGINT cancel it."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
