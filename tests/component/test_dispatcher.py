"""Agents' sessions through the dispatcher endpoints: register, assignments,
status, heartbeats and a node that falls silent."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.security import new_key_and_csr
from tests.component.api_client import api_client

Client = TestClient[Any, Any]
PERIOD_NS = 200_000_000  # a short heartbeat period keeps the test fast


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with api_client(leader_loops=True) as c:
        spec = {"Dispatcher": {"HeartbeatPeriod": PERIOD_NS}}
        assert (await c.post("/swarm/init", json={"Spec": spec})).status == 200
        yield c


async def enroll(client: Client, hostname: str) -> str:
    """A node's certificate for the worker token, then its registration (the
    test client is an admin, so it names the node the certificate gave)."""
    swarm = await (await client.get("/swarm")).json()
    _, csr = new_key_and_csr()
    issued = await client.post(
        "/shoal/ca/issue", json={"JoinToken": swarm["JoinTokens"]["Worker"], "CSR": csr.decode()}
    )
    assert issued.status == 200, await issued.text()
    body = {
        "NodeID": (await issued.json())["NodeID"],
        "Addr": "198.18.0.99",
        "Description": {
            "Hostname": hostname,
            "Resources": {"NanoCPUs": 2_000_000_000, "MemoryBytes": 1 << 30},
        },
    }
    reply = await client.post("/shoal/dispatcher/register", json=body)
    assert reply.status == 200, await reply.text()
    return str((await reply.json())["NodeID"])


async def until(check: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def test_a_wrong_token_is_refused(client: Client) -> None:
    swarm = await (await client.get("/swarm")).json()
    _, csr = new_key_and_csr()
    token = swarm["JoinTokens"]["Worker"]
    wrong = token[:-5] + ("00000" if not token.endswith("00000") else "11111")
    reply = await client.post("/shoal/ca/issue", json={"JoinToken": wrong, "CSR": csr.decode()})
    assert reply.status == 400
    assert "A valid join token is necessary" in (await reply.json())["message"]


async def test_an_agent_gets_its_tasks_and_reports_them_running(client: Client) -> None:
    node_id = await enroll(client, "worker-1")
    nodes = await (await client.get("/nodes")).json()
    assert {n["Description"]["Hostname"] for n in nodes} == {"manager-1", "worker-1"}
    spec = {
        "Name": "web",
        "Mode": {"Replicated": {"Replicas": 2}},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox"},
            "Placement": {"Constraints": ["node.role==worker"]},
        },
    }
    assert (await client.post("/services/create", json=spec)).status == 201

    async def assigned() -> list[dict[str, Any]]:
        reply = await client.get("/shoal/dispatcher/assignments", params={"node": node_id})
        tasks = (await reply.json())["Tasks"]
        return [t for t in tasks if t["Status"]["State"] == "assigned"]

    tasks = await until(lambda: _two(assigned()))
    await client.post("/shoal/dispatcher/heartbeat", json={"NodeID": node_id})
    updates = [
        {"TaskID": t["ID"], "Status": {"State": "running", "Message": "started"}} for t in tasks
    ]
    reply = await client.post(
        "/shoal/dispatcher/status", json={"NodeID": node_id, "Updates": updates}
    )
    assert reply.status == 200
    listed = await (await client.get("/services?status=true")).json()
    assert listed[0]["ServiceStatus"]["RunningTasks"] == 2

    # A stale report (an older state) never moves a task backwards.
    stale = [{"TaskID": tasks[0]["ID"], "Status": {"State": "starting"}}]
    await client.post("/shoal/dispatcher/status", json={"NodeID": node_id, "Updates": stale})
    task = await (await client.get(f"/tasks/{tasks[0]['ID']}")).json()
    assert task["Status"]["State"] == "running"


async def _two(pending: Any) -> list[dict[str, Any]] | None:
    tasks = await pending
    return tasks if len(tasks) == 2 else None


async def test_a_silent_node_goes_down_and_its_tasks_are_orphaned(client: Client) -> None:
    node_id = await enroll(client, "worker-2")
    spec = {
        "Name": "api",
        "Mode": {"Replicated": {"Replicas": 1}},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox"},
            "Placement": {"Constraints": ["node.role==worker"]},
        },
    }
    await client.post("/services/create", json=spec)

    async def node_state() -> str:
        return str((await (await client.get(f"/nodes/{node_id}")).json())["Status"]["State"])

    async def down() -> bool:
        return await node_state() == "down"

    await until(down)  # no heartbeats at all: three periods later it is down
    filters = json.dumps({"node": [node_id]})
    tasks = await (await client.get("/tasks", params={"filters": filters})).json()
    assert tasks and all(t["Status"]["State"] == "orphaned" for t in tasks)
    await client.post("/shoal/dispatcher/heartbeat", json={"NodeID": node_id})

    async def ready() -> bool:
        return await node_state() == "ready"

    await until(ready)
