"""The agent follows the cluster's list of managers from its heartbeats."""

from __future__ import annotations

import ssl

from agent.session import ManagerSession


async def test_the_agent_follows_joined_and_departed_managers() -> None:
    session = ManagerSession(["m2:2377", "m1:2377"], ssl.create_default_context())
    try:
        session.follow(["m1:2377", "m3:2377"])  # m2 left, m3 joined
        assert session.managers == ["m1:2377", "m3:2377"]
        session.follow(["m3:2377", "m1:2377", "m4:2377"])
        assert session.managers == ["m1:2377", "m3:2377", "m4:2377"]  # the answering one first
    finally:
        await session.close()
