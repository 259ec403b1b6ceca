"""The manager API's transport rules and the swarm, node and service endpoints,
as the docker CLI and docker-py use them (docker-api.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from manager.http.context import CONTEXT, APIContext
from tests.component.api_client import api_client

Client = TestClient[Any, Any]
CLI_CREATE = {
    "Name": "web",
    "Labels": {},
    "TaskTemplate": {
        "ContainerSpec": {"Image": "busybox:latest", "Init": False, "DNSConfig": {}},
        "Resources": {"Limits": {}, "Reservations": {}},
        "Placement": {},
    },
    "Mode": {"Replicated": {"Replicas": 3}},
    "EndpointSpec": {"Mode": "vip"},
}


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


@pytest.fixture
async def swarm(client: Client) -> Client:
    reply = await client.post("/v1.41/swarm/init", json={"ListenAddr": "0.0.0.0:2377"})
    assert reply.status == 200, await reply.text()
    return client


def context_of(client: Client) -> APIContext:
    app = client.app
    assert app is not None
    found: APIContext = app[CONTEXT]
    return found


async def error(reply: Any, status: int) -> str:
    assert reply.status == status, await reply.text()
    assert reply.headers["Content-Type"] == "application/json"
    return str((await reply.json())["message"])


async def test_ping_headers_and_version_prefixes(client: Client) -> None:
    for method in ("GET", "HEAD"):
        reply = await client.request(method, "/_ping")
        assert reply.status == 200
        assert reply.headers["Api-Version"] == "1.41"
        assert reply.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
        assert await reply.read() == (b"OK" if method == "GET" else b"")
    version = await (await client.get("/version")).json()
    assert version["ApiVersion"] == "1.41" and version["Components"][0]["Name"] == "Engine"
    assert "too new" in await error(await client.get("/v1.42/version"), 400)
    assert (await client.get("/v1.24/version")).status == 200
    assert await error(await client.get("/v1.41/nothing/here"), 404) == "page not found"


async def test_swarm_state_before_and_after_init(client: Client) -> None:
    info = await (await client.get("/info")).json()
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    message = await error(await client.get("/swarm"), 503)
    assert message == "This node is not part of a swarm"
    assert (await client.post("/swarm/init", json={})).status == 200
    assert "already part of a swarm" in await error(await client.post("/swarm/init", json={}), 503)
    info = await (await client.get("/info")).json()
    swarm = info["Swarm"]
    assert swarm["LocalNodeState"] == "active" and swarm["ControlAvailable"] is True
    assert swarm["Cluster"]["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == 5
    inspect = await (await client.get("/swarm")).json()
    assert inspect["JoinTokens"]["Worker"].startswith("SWMTKN-1-")
    assert inspect["JoinTokens"]["Worker"] != inspect["JoinTokens"]["Manager"]
    nodes = await (await client.get("/nodes")).json()
    assert len(nodes) == 1 and nodes[0]["ManagerStatus"]["Leader"] is True


async def test_service_create_inspect_list_update_and_remove(swarm: Client) -> None:
    created = await swarm.post("/v1.41/services/create", json=CLI_CREATE)
    assert created.status == 201
    service_id = (await created.json())["ID"]
    assert len(service_id) == 25
    assert "already exists" in await error(
        await swarm.post("/services/create", json=CLI_CREATE), 409
    )
    service = await (await swarm.get(f"/services/{service_id[:6]}")).json()
    assert service["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}
    by_name = await (await swarm.get("/services/web")).json()
    assert by_name["ID"] == service_id

    listed = await (await swarm.get("/services?status=true")).json()
    assert listed[0]["ServiceStatus"] == {"RunningTasks": 0, "DesiredTasks": 3, "CompletedTasks": 0}
    filtered = await swarm.get("/services", params={"filters": json.dumps({"name": ["we"]})})
    assert [s["ID"] for s in await filtered.json()] == [service_id]
    assert "Invalid filter 'colour'" in await error(
        await swarm.get("/services", params={"filters": '{"colour":{"red":true}}'}), 400
    )

    version = service["Version"]["Index"]
    scaled = dict(CLI_CREATE, Mode={"Replicated": {"Replicas": 5}})
    reply = await swarm.post(f"/services/{service_id}/update?version={version}", json=scaled)
    assert reply.status == 200 and await reply.json() == {"Warnings": []}
    stale = await swarm.post(f"/services/{service_id}/update?version={version}", json=scaled)
    assert await error(stale, 500) == "rpc error: code = Unknown desc = update out of sequence"
    assert "invalid service version 'x'" in await error(
        await swarm.post(f"/services/{service_id}/update?version=x", json=scaled), 400
    )
    renamed = dict(CLI_CREATE, Name="other")
    now = (await (await swarm.get(f"/services/{service_id}")).json())["Version"]["Index"]
    assert (
        await error(
            await swarm.post(f"/services/{service_id}/update?version={now}", json=renamed), 501
        )
        == "renaming services is not supported"
    )
    rolled = await swarm.post(
        f"/services/{service_id}/update?version={now}&rollback=previous", json={}
    )
    assert rolled.status == 200
    after = await (await swarm.get(f"/services/{service_id}")).json()
    assert after["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    assert after["PreviousSpec"]["Mode"]["Replicated"]["Replicas"] == 5

    assert (await swarm.delete(f"/services/{service_id}")).status == 200
    assert await error(await swarm.get(f"/services/{service_id}"), 404) == (
        f"service {service_id} not found"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Name": "x", "TaskTemplate": {"ContainerSpec": {}}}, "image reference must be provided"),
        (
            dict(CLI_CREATE, Mode={"Replicated": {"Replicas": -1}}),
            "Number of replicas must be non-negative",
        ),
        (
            dict(CLI_CREATE, Mode={"Replicated": {}, "Global": {}}),
            "must specify only one service mode",
        ),
        (
            {
                **CLI_CREATE,
                "TaskTemplate": {
                    **CLI_CREATE["TaskTemplate"],  # type: ignore[dict-item]
                    "Placement": {"Constraints": ["node.role=manager"]},
                },
            },
            "constraint expected one operator from ==, !=",
        ),
    ],
)
async def test_invalid_service_specs_get_400(swarm: Client, body: Any, message: str) -> None:
    assert message in await error(await swarm.post("/services/create", json=body), 400)


async def test_networks_secrets_and_configs(swarm: Client) -> None:
    reply = await swarm.post("/networks/create", json={"Name": "backend", "Driver": "overlay"})
    assert reply.status == 201
    network_id = (await reply.json())["Id"]
    assert "network with name backend already exists" in await error(
        await swarm.post("/networks/create", json={"Name": "backend"}), 409
    )
    shown = await (await swarm.get("/networks/backend?scope=swarm")).json()
    assert shown["Id"] == network_id and shown["Scope"] == "swarm"
    with_net = {
        **CLI_CREATE,
        "TaskTemplate": {
            **CLI_CREATE["TaskTemplate"],  # type: ignore[dict-item]
            "Networks": [{"Target": "backend"}],
        },
    }
    assert (await swarm.post("/services/create", json=with_net)).status == 201
    assert "in use" in await error(await swarm.delete(f"/networks/{network_id}"), 400)

    secret = await swarm.post("/secrets/create", json={"Name": "db", "Data": "c2VjcmV0"})
    assert secret.status == 201
    secret_id = (await secret.json())["ID"]
    shown_secret = await (await swarm.get(f"/secrets/{secret_id}")).json()
    assert "Data" not in shown_secret["Spec"] and "SealedData" not in shown_secret
    stored = context_of(swarm).store.view(lambda tx: tx.all("secret"))
    assert "c2VjcmV0" not in json.dumps(stored)  # sealed at rest, not base64
    config = await swarm.post("/configs/create", json={"Name": "app.conf", "Data": "eD0x"})
    config_id = (await config.json())["ID"]
    assert (await (await swarm.get(f"/configs/{config_id}")).json())["Spec"]["Data"] == "eD0x"
    listed = await swarm.get("/secrets", params={"filters": json.dumps({"name": {"db": True}})})
    assert [s["ID"] for s in await listed.json()] == [secret_id]
    assert (await swarm.delete(f"/secrets/{secret_id}")).status == 204
    assert "not found" in await error(await swarm.delete(f"/secrets/{secret_id}"), 404)


async def test_events_stream_cluster_changes_with_filters(swarm: Client) -> None:
    params = {"filters": json.dumps({"type": ["service"], "event": ["create", "remove"]})}
    stream = await swarm.get("/events", params=params)
    assert stream.status == 200
    created = await swarm.post("/services/create", json=CLI_CREATE)
    service_id = (await created.json())["ID"]
    await swarm.post("/secrets/create", json={"Name": "ignored", "Data": "eA=="})
    assert (await swarm.delete(f"/services/{service_id}")).status == 200
    async with asyncio.timeout(10):
        first = json.loads(await stream.content.readline())
        second = json.loads(await stream.content.readline())
    assert (first["Type"], first["Action"], first["Actor"]["ID"]) == (
        "service",
        "create",
        service_id,
    )
    assert first["Actor"]["Attributes"]["name"] == "web" and first["scope"] == "swarm"
    assert (second["Type"], second["Action"]) == ("service", "remove")
    stream.close()
    bad = await swarm.get("/events", params={"filters": '{"colour":["red"]}'})
    assert "Invalid filter 'colour'" in await error(bad, 400)


async def test_swarm_update_rotates_tokens_and_checks_the_version(swarm: Client) -> None:
    before = await (await swarm.get("/swarm")).json()
    version = before["Version"]["Index"]
    spec = dict(before["Spec"], Labels={"team": "ops"})
    reply = await swarm.post(f"/swarm/update?version={version}&rotateWorkerToken=true", json=spec)
    assert reply.status == 200
    after = await (await swarm.get("/swarm")).json()
    assert after["JoinTokens"]["Worker"] != before["JoinTokens"]["Worker"]
    assert after["JoinTokens"]["Manager"] == before["JoinTokens"]["Manager"]
    assert after["Spec"]["Labels"] == {"team": "ops"}
    stale = await swarm.post(f"/swarm/update?version={version}", json=spec)
    assert await error(stale, 500) == "rpc error: code = Unknown desc = update out of sequence"


async def test_task_filter_by_node_takes_its_hostname() -> None:
    async with api_client(leader_loops=True) as client:
        assert (await client.post("/swarm/init", json={})).status == 200
        spec = {
            "Name": "pinned",
            "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
            "Mode": {"Replicated": {"Replicas": 1}},
        }
        assert (await client.post("/services/create", json=spec)).status == 201
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            tasks = await (await client.get("/tasks")).json()
            if tasks and tasks[0].get("NodeID"):
                break
            assert asyncio.get_running_loop().time() < deadline, "the task was not placed"
            await asyncio.sleep(0.05)
        by_name = json.dumps({"node": ["manager-1"]})
        found = await (await client.get("/tasks", params={"filters": by_name})).json()
        assert [t["ID"] for t in found] == [tasks[0]["ID"]]


async def test_logs_bad_input_gets_clear_errors(swarm: Client) -> None:
    created = await swarm.post("/services/create", json=CLI_CREATE)
    service_id = (await created.json())["ID"]
    no_stream = await swarm.get(f"/services/{service_id}/logs")
    assert "choose at least one stream" in await error(no_stream, 400)
    bad_tail = await swarm.get(f"/services/{service_id}/logs?stdout=1&tail=lots")
    assert "invalid value for tail" in await error(bad_tail, 400)
    unknown = await swarm.get("/services/nosuch/logs?stdout=1")
    assert "service nosuch not found" in await error(unknown, 404)
    unknown_task = await swarm.get("/tasks/nosuch/logs?stdout=1")
    assert "not found" in await error(unknown_task, 404)
