"""Overlay networking on the manager: networks get subnets and VNIs, services
VIPs and published ports, tasks and nodes addresses, and netd reads it all
from /shoal/dispatcher/networks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from manager.allocator.ipam import OVERLAP, VXLAN_OPTION, mac_for
from tests.component.api_client import api_client

Client = TestClient[Any, Any]
MANAGER = "m" * 25  # the node api_client's manager runs as
RPC = "rpc error: code = InvalidArgument desc = "
ENDPOINT_KEYS = {
    "NetworkID",
    "Kind",
    "ID",
    "NodeID",
    "NodeAddr",
    "Address",
    "MAC",
    "Names",
    "ServiceID",
    "ServiceName",
    "Live",
}


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with api_client(leader_loops=True) as c:
        assert (await c.post("/swarm/init", json={})).status == 200
        yield c


async def error(reply: Any, status: int) -> str:
    assert reply.status == status, await reply.text()
    return str((await reply.json())["message"])


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)
    return result


async def get(client: Client, path: str) -> Any:
    reply = await client.get(path)
    assert reply.status == 200, await reply.text()
    return await reply.json()


async def create_network(client: Client, **body: Any) -> str:
    reply = await client.post("/networks/create", json=body)
    assert reply.status == 201, await reply.text()
    return str((await reply.json())["Id"])


def service_spec(name: str, replicas: int, networks: list[str], **endpoint: Any) -> Any:
    return {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox"},
            "Networks": [{"Target": n} for n in networks],
        },
        "EndpointSpec": endpoint or {"Mode": "vip"},
    }


async def create_service(client: Client, spec: Any) -> str:
    reply = await client.post("/services/create", json=spec)
    assert reply.status == 201, await reply.text()
    return str((await reply.json())["ID"])


def addresses_on(attachments: list[Any], network_id: str) -> list[str]:
    return [a for x in attachments if x["Network"]["ID"] == network_id for a in x["Addresses"]]


async def test_networks_get_a_subnet_gateway_and_vni(client: Client) -> None:
    (ingress,) = await get(client, "/networks")
    assert ingress["Name"] == "ingress" and ingress["Ingress"] is True
    assert ingress["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]
    assert ingress["Options"][VXLAN_OPTION] == "4096"

    backend = await get(client, f"/networks/{await create_network(client, Name='backend')}")
    assert backend["IPAM"]["Config"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
    assert backend["Options"] == {VXLAN_OPTION: "4097"}
    clash = {"Name": "clash", "IPAM": {"Config": [{"Subnet": "10.0.1.128/25"}]}}
    assert await error(await client.post("/networks/create", json=clash), 400) == OVERLAP
    bad = {"Name": "bad", "IPAM": {"Config": [{"Subnet": "10.0.300.0/24"}]}}
    assert "invalid CIDR address" in await error(
        await client.post("/networks/create", json=bad), 400
    )
    given = {"Config": [{"Subnet": "192.168.50.0/24", "Gateway": "192.168.50.254"}]}
    custom_id = await create_network(
        client, Name="custom", Internal=True, Attachable=True, IPAM=given
    )
    custom = await get(client, f"/networks/{custom_id}")
    assert custom["IPAM"]["Config"] == given["Config"]
    assert custom["Internal"] is True and custom["Attachable"] is True
    assert custom["Options"][VXLAN_OPTION] == "4098"
    third = await get(client, f"/networks/{await create_network(client, Name='third')}")
    assert third["IPAM"]["Config"][0]["Subnet"] == "10.0.2.0/24"
    assert third["Options"][VXLAN_OPTION] == "4099"

    second_ingress = {"Name": "mesh", "Ingress": True}
    message = await error(await client.post("/networks/create", json=second_ingress), 409)
    assert f"ingress network ({ingress['Id']}) is already present" in message
    assert "pre-defined" in await error(await client.delete("/networks/ingress"), 403)
    names = {n["Name"] for n in await get(client, "/networks")}
    assert names == {"ingress", "backend", "custom", "third"}  # refusals left nothing
    assert (await client.delete("/networks/third")).status == 204
    again = await get(client, f"/networks/{await create_network(client, Name='again')}")
    assert again["IPAM"]["Config"][0]["Subnet"] == "10.0.2.0/24"  # freed with its network


async def test_init_takes_the_ingress_subnet_from_the_given_pool() -> None:
    async with api_client() as client:
        bad = {"DefaultAddrPool": ["10.0.0.0/40"]}
        assert "invalid default address pool" in await error(
            await client.post("/swarm/init", json=bad), 400
        )
        body = {"DefaultAddrPool": ["172.30.0.0/16"], "SubnetSize": 26}
        assert (await client.post("/swarm/init", json=body)).status == 200
        (ingress,) = await get(client, "/networks")
        assert ingress["IPAM"]["Config"] == [{"Subnet": "172.30.0.0/26", "Gateway": "172.30.0.1"}]
        net = await get(client, f"/networks/{await create_network(client, Name='n')}")
        assert net["IPAM"]["Config"][0]["Subnet"] == "172.30.0.64/26"


async def test_services_get_vips_and_ports_and_tasks_get_addresses(client: Client) -> None:
    (ingress,) = await get(client, "/networks")
    ingress_id = ingress["Id"]
    backend_id = await create_network(client, Name="backend")
    message = await error(
        await client.post("/services/create", json=service_spec("x", 1, ["nowhere"])), 404
    )
    assert message == "network nowhere not found"

    web_id = await create_service(
        client, service_spec("web", 3, ["backend"], Mode="vip", Ports=[{"TargetPort": 80}])
    )
    web = await get(client, f"/services/{web_id}")
    port = {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30000, "PublishMode": "ingress"}
    assert web["Endpoint"]["Ports"] == [port]
    assert web["Endpoint"]["VirtualIPs"] == [
        {"NetworkID": ingress_id, "Addr": "10.0.0.3/24"},
        {"NetworkID": backend_id, "Addr": "10.0.1.2/24"},
    ]
    assert web["Endpoint"]["Spec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"}
    ]
    taken = service_spec("copy", 1, [], Ports=[{"TargetPort": 8080, "PublishedPort": 30000}])
    assert await error(await client.post("/services/create", json=taken), 400) == (
        f"{RPC}port '30000' is already in use by service 'web' ({web_id}) as an ingress port"
    )
    dnsrr_port = service_spec("rr", 1, [], Mode="dnsrr", Ports=[{"TargetPort": 80}])
    assert "port published with ingress mode can't be used with dnsrr mode" in await error(
        await client.post("/services/create", json=dnsrr_port), 400
    )
    explicit = service_spec("mesh", 1, ["ingress"])
    assert "cannot be explicitly attached to the ingress network" in await error(
        await client.post("/services/create", json=explicit), 400
    )
    db_id = await create_service(client, service_spec("db", 1, ["backend"], Mode="dnsrr"))
    assert "VirtualIPs" not in (await get(client, f"/services/{db_id}"))["Endpoint"]
    assert "in use by service" in await error(await client.delete("/networks/backend"), 400)

    async def allocated() -> list[Any] | None:
        tasks = await get(client, "/tasks")
        done = [t for t in tasks if t["Status"]["State"] == "assigned"]
        return tasks if len(done) == 4 else None

    tasks = await until(allocated)
    by_service = {sid: [t for t in tasks if t["ServiceID"] == sid] for sid in (web_id, db_id)}
    for task in by_service[web_id]:
        assert [a["Network"]["ID"] for a in task["NetworksAttachments"]] == [ingress_id, backend_id]
        network = task["NetworksAttachments"][1]["Network"]
        assert network["Spec"] == {"Name": "backend"}
        assert network["DriverState"] == {"Name": "overlay", "Options": {VXLAN_OPTION: "4097"}}
        assert network["IPAMOptions"] == {
            "Configs": [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
        }
    (db_task,) = by_service[db_id]
    assert [a["Network"]["ID"] for a in db_task["NetworksAttachments"]] == [backend_id]
    node = await get(client, f"/nodes/{MANAGER}")
    (node_attachment,) = node["Attachments"]
    # Given with the node in swarm init's transaction, before any VIP.
    assert node_attachment == {"Network": {"ID": ingress_id}, "Addresses": ["10.0.0.2/24"]}
    on_backend = ["10.0.1.2/24"] + [
        a for t in tasks for a in addresses_on(t["NetworksAttachments"], backend_id)
    ]
    on_ingress = ["10.0.0.3/24", *node_attachment["Addresses"]] + [
        a for t in tasks for a in addresses_on(t["NetworksAttachments"], ingress_id)
    ]
    assert len(on_backend) == 5 and len(set(on_backend)) == 5
    assert len(on_ingress) == 5 and len(set(on_ingress)) == 5
    assert "10.0.1.1/24" not in on_backend and "10.0.0.1/24" not in on_ingress

    running = by_service[web_id][0]
    update = {"TaskID": running["ID"], "Status": {"State": "running", "Message": "started"}}
    reply = await client.post(
        "/shoal/dispatcher/status", json={"NodeID": MANAGER, "Updates": [update]}
    )
    assert reply.status == 200

    async def running_reported() -> Any:
        state = await get(client, "/shoal/dispatcher/networks?index=0")
        return state if any(e["Live"] for e in state["Endpoints"]) else None

    state = await until(running_reported)
    assert {n["Name"]: n for n in state["Networks"]}["ingress"] == {
        "ID": ingress_id,
        "Name": "ingress",
        "VNI": 4096,
        "Subnet": "10.0.0.0/24",
        "Gateway": "10.0.0.1",
        "Internal": False,
        "Ingress": True,
    }
    endpoints = state["Endpoints"]
    assert all(set(e) == ENDPOINT_KEYS for e in endpoints)
    assert len(endpoints) == 3 * 2 + 1 + 1
    (node_endpoint,) = [e for e in endpoints if e["Kind"] == "node"]
    assert node_endpoint == {
        "NetworkID": ingress_id,
        "Kind": "node",
        "ID": MANAGER,
        "NodeID": MANAGER,
        "NodeAddr": "127.0.0.1",
        "Address": node_attachment["Addresses"][0],
        "MAC": mac_for(node_attachment["Addresses"][0]),
        "Names": [],
        "ServiceID": "",
        "ServiceName": "",
        "Live": True,
    }
    mine = [e for e in endpoints if e["ID"] == running["ID"]]
    assert [e["NetworkID"] for e in sorted(mine, key=lambda e: e["Address"])] == [
        ingress_id,
        backend_id,
    ]
    slot = running["Slot"]
    for endpoint in mine:
        assert endpoint["Live"] is True and endpoint["NodeAddr"] == "127.0.0.1"
        assert endpoint["Names"] == [f"web.{slot}.{running['ID']}", f"web.{slot}"]
        assert endpoint["ServiceID"] == web_id and endpoint["ServiceName"] == "web"
        assert endpoint["MAC"] == mac_for(endpoint["Address"])
    assert sum(e["Live"] for e in endpoints if e["Kind"] == "task") == 2  # its two networks
    services = {s["Name"]: s for s in state["Services"]}
    assert services["web"] == {
        "ID": web_id,
        "Name": "web",
        "EndpointMode": "vip",
        "VIPs": [
            {"NetworkID": ingress_id, "Address": "10.0.0.3/24"},
            {"NetworkID": backend_id, "Address": "10.0.1.2/24"},
        ],
        "Ports": [port],
    }
    assert services["db"]["EndpointMode"] == "dnsrr" and services["db"]["VIPs"] == []

    # The long poll waits for a change that matters, then answers with it.
    poll = asyncio.create_task(get(client, f"/shoal/dispatcher/networks?index={state['Index']}"))
    await asyncio.sleep(0.2)
    assert not poll.done()
    spec = service_spec("web", 3, ["backend"], Mode="vip", Ports=[{"TargetPort": 80}])
    spec["Labels"] = {"changed": "yes"}
    version = web["Version"]["Index"]
    assert (
        await client.post(f"/services/{web_id}/update?version={version}", json=spec)
    ).status == 200
    after = await asyncio.wait_for(poll, 5)
    assert after["Index"] > state["Index"]
    # An update keeps the VIPs and the published port of what did not change.
    assert {s["Name"]: s for s in after["Services"]}["web"] == services["web"]
    web = await get(client, f"/services/{web_id}")
    no_port = service_spec("web", 3, ["backend"], Mode="vip")
    reply = await client.post(
        f"/services/{web_id}/update?version={web['Version']['Index']}", json=no_port
    )
    assert reply.status == 200
    endpoint = (await get(client, f"/services/{web_id}"))["Endpoint"]
    assert endpoint["VirtualIPs"] == [{"NetworkID": backend_id, "Addr": "10.0.1.2/24"}]
    assert "Ports" not in endpoint

    # Removed services' tasks hold their addresses until they end.
    for sid in (web_id, db_id):
        assert (await client.delete(f"/services/{sid}")).status == 200
    assert "in use by task" in await error(await client.delete("/networks/backend"), 400)
    tasks = await get(client, "/tasks")
    ended = [{"TaskID": t["ID"], "Status": {"State": "shutdown"}} for t in tasks]
    await client.post("/shoal/dispatcher/status", json={"NodeID": MANAGER, "Updates": ended})

    async def removed() -> bool:
        return (await client.delete("/networks/backend")).status == 204

    await until(removed)


async def test_nodes_get_their_ingress_address_as_they_register() -> None:
    """In the registering write itself (no reconciler runs here): a node is
    not rewritten a moment after a user may have read it."""
    async with api_client() as client:
        assert (await client.post("/swarm/init", json={})).status == 200
        worker = "w" * 25
        body = {"NodeID": worker, "Addr": "198.18.0.7", "Description": {"Hostname": "w"}}
        assert (await client.post("/shoal/dispatcher/register", json=body)).status == 200
        node = await get(client, f"/nodes/{worker}")
        assert node["Attachments"][0]["Addresses"] == ["10.0.0.3/24"]  # the manager has .2
        assert (await client.post("/shoal/dispatcher/register", json=body)).status == 200
        assert (await get(client, f"/nodes/{worker}"))["Attachments"] == node["Attachments"]
