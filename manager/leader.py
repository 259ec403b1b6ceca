"""Leader-only components (orchestrator, allocator, scheduler, dispatcher):
the leader runs them; losing leadership stops them (DESIGN.md §3.4)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol


class Component(Protocol):
    async def run(self) -> None:
        """Until cancelled."""
        ...


class Leadership(Protocol):
    leader_changed: asyncio.Event

    def is_leader(self) -> bool: ...


class LeaderOnly:
    """Runs fresh components while this manager leads, and cancels them the
    moment it stops leading (a crash of one stops the manager loudly)."""

    def __init__(
        self, leadership: Leadership, factories: list[Callable[[], Component]], poll: float = 0.2
    ) -> None:
        self.leadership = leadership
        self.factories = factories
        self.poll = poll
        self.running = False

    async def _wait_until(self, leading: bool) -> None:
        while self.leadership.is_leader() != leading:
            self.leadership.leader_changed.clear()
            # The event is a hint; the poll covers a lease that simply expires.
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a
            # cancellation that lands as the wait ends (a manager that then
            # never stops on SIGTERM).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll):
                    await self.leadership.leader_changed.wait()

    async def run(self) -> None:
        while True:
            await self._wait_until(True)
            components = [make() for make in self.factories]
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(c.run()) for c in components]
                self.running = True
                try:
                    await self._wait_until(False)
                finally:
                    self.running = False
                    for task in tasks:
                        task.cancel()
