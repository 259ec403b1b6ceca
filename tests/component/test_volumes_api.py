"""/volumes and the volumes services mount, against a manager in this
process (its reconciler and dispatcher running, volumed faked): clear errors
for bad drivers and options, volumes created on first use, a volume in use
kept, a removed distributed volume's data deleted, and the scheduler keeping
a non-shared distributed volume on one node."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from manager.volumed_client import FakeVolumed
from tests.component.api_client import api_client
from tests.component.test_dispatcher import enroll, until

Client = TestClient[Any, Any]
pytestmark = pytest.mark.timeout(60)
SHOAL_DEFAULTS = {"replication": "001", "sharing": "none"}


@pytest.fixture
def volumed() -> FakeVolumed:
    return FakeVolumed()


@pytest.fixture
async def client(volumed: FakeVolumed) -> AsyncIterator[Client]:
    async with api_client(leader_loops=True, volume_data=volumed) as c:
        # A long heartbeat period: nodes that never beat stay up for the test.
        spec = {"Dispatcher": {"HeartbeatPeriod": 60_000_000_000}}
        assert (await c.post("/swarm/init", json={"Spec": spec})).status == 200
        yield c


async def call(client: Client, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with client.request(method, path, json=body) as reply:
        text = await reply.text()
        return reply.status, json.loads(text) if text else None


def service(name: str, *mounts: dict[str, Any], replicas: int = 1) -> dict[str, Any]:
    return {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox", "Mounts": list(mounts)},
            "Placement": {"Constraints": ["node.role==worker"]},
        },
    }


def mount(source: str, driver: str = "", read_only: bool = False, **options: str) -> Any:
    m: dict[str, Any] = {"Type": "volume", "Source": source, "Target": f"/mnt/{source}"}
    if driver or options:
        m["VolumeOptions"] = {"DriverConfig": {"Name": driver, "Options": options}}
    if read_only:
        m["ReadOnly"] = True
    return m


async def volumes(client: Client) -> dict[str, Any]:
    _, listed = await call(client, "GET", "/volumes")
    return {v["Name"]: v for v in listed["Volumes"]}


async def tasks_of(client: Client, service_id: str) -> list[dict[str, Any]]:
    filters = json.dumps({"service": [service_id]})
    _, tasks = await call(client, "GET", f"/tasks?filters={filters}")
    return list(tasks)


async def report(client: Client, node_id: str, task_ids: list[str], state: str) -> None:
    updates = [{"TaskID": t, "Status": {"State": state}} for t in task_ids]
    body = {"NodeID": node_id, "Updates": updates}
    assert (await call(client, "POST", "/shoal/dispatcher/status", body))[0] == 200


async def assigned(client: Client, service_id: str, count: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        tasks = await tasks_of(client, service_id)
        placed = [t for t in tasks if t["Status"]["State"] == "assigned"]
        return placed if len(placed) == count else None

    found: list[dict[str, Any]] = await until(check)
    return found


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"Name": "x1", "Driver": "nfs"}, "unknown volume driver 'nfs': use local or shoal"),
        (
            {"Name": "x1", "Driver": "shoal", "DriverOpts": {"replication": "12"}},
            "invalid replication '12': three digits xyz, copies on other data centers (x), "
            "other racks (y) and other servers of the same rack (z), e.g. 000 or 001",
        ),
        (
            {"Name": "x1", "Driver": "shoal", "DriverOpts": {"sharing": "yes"}},
            "invalid sharing 'yes': use none (one read-write user at a time) or all",
        ),
        (
            {"Name": "x1", "DriverOpts": {"replication": "000"}},
            "local driver: unknown option(s) replication (known: none)",
        ),
        ({"Name": "../x1"}, "invalid volume name '../x1'"),
    ],
)
async def test_bad_volume_requests_get_clear_errors(
    client: Client, request_body: dict[str, Any], message: str
) -> None:
    status, body = await call(client, "POST", "/volumes/create", request_body)
    assert status == 400 and message in body["message"]
    assert await volumes(client) == {}


async def test_volumes_show_driver_options_scope_and_creation_time(client: Client) -> None:
    status, data = await call(
        client, "POST", "/volumes/create", {"Name": "data", "Driver": "shoal"}
    )
    assert status == 201
    assert (data["Driver"], data["Scope"], data["Options"]) == ("shoal", "global", SHOAL_DEFAULTS)
    assert datetime.fromisoformat(data["CreatedAt"]).tzinfo is not None  # RFC 3339
    _, scratch = await call(client, "POST", "/volumes/create", {"Name": "scratch"})
    assert (scratch["Driver"], scratch["Scope"], scratch["Options"]) == ("local", "local", {})
    assert set(scratch) >= {"Name", "Mountpoint", "CreatedAt", "Labels"}
    # Asking again for the same volume is fine; for another driver, not.
    assert await call(client, "POST", "/volumes/create", {"Name": "data", "Driver": "shoal"}) == (
        201,
        data,
    )
    status, body = await call(client, "POST", "/volumes/create", {"Name": "data"})
    assert (status, body["message"]) == (409, "create data: volume name must be unique")
    assert await call(client, "GET", "/volumes/data") == (200, data)
    assert list(await volumes(client)) == ["data", "scratch"]


async def test_a_service_creates_its_volumes_on_first_use(client: Client) -> None:
    await call(client, "POST", "/volumes/create", {"Name": "known", "Driver": "shoal"})
    db = mount("db", "shoal", replication="000")
    db["VolumeOptions"]["Labels"] = {"app": "db"}
    anonymous = {"Type": "volume", "Target": "/scratch"}
    spec = service("db", db, mount("cache"), anonymous, mount("known"))
    status, created = await call(client, "POST", "/services/create", spec)
    assert status == 201, created
    found = await volumes(client)
    assert sorted(found) == ["cache", "db", "known"]  # nothing for the anonymous volume
    assert found["db"]["Options"] == {"replication": "000", "sharing": "none"}
    assert (found["db"]["Driver"], found["db"]["Labels"]) == ("shoal", {"app": "db"})
    assert (found["cache"]["Driver"], found["known"]["Driver"]) == ("local", "shoal")

    _, current = await call(client, "GET", f"/services/{created['ID']}")
    spec["TaskTemplate"]["ContainerSpec"]["Mounts"].append(mount("logs", "shoal", sharing="all"))
    version = current["Version"]["Index"]
    path = f"/services/{created['ID']}/update?version={version}"
    assert (await call(client, "POST", path, spec))[0] == 200
    assert (await volumes(client))["logs"]["Options"] == {"replication": "001", "sharing": "all"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (mount("db", "nfs"), "unknown volume driver 'nfs': use local or shoal"),
        (mount("db", "shoal", replication="9"), "invalid replication '9': three digits xyz"),
        (mount("db", "local", sharing="all"), "local driver: unknown option(s) sharing"),
        (mount("scratch", "shoal"), "volume scratch already exists with driver local, not shoal"),
    ],
)
async def test_a_bad_mount_refuses_the_service_and_writes_nothing(
    client: Client, bad: dict[str, Any], message: str
) -> None:
    await call(client, "POST", "/volumes/create", {"Name": "scratch"})
    status, body = await call(client, "POST", "/services/create", service("db", mount("ok"), bad))
    assert status == 400
    assert body["message"].startswith(f'invalid mount config for type "volume": {message}')
    assert (await call(client, "GET", "/services"))[1] == []
    assert list(await volumes(client)) == ["scratch"]


async def test_a_volume_in_use_stays_and_a_removed_one_loses_its_data(
    client: Client, volumed: FakeVolumed
) -> None:
    node_id = await enroll(client, "worker-1")
    _, created = await call(client, "POST", "/services/create", service("db", mount("db", "shoal")))
    service_id = created["ID"]
    [task] = await assigned(client, service_id, 1)
    status, body = await call(client, "DELETE", "/volumes/db")
    assert (status, body["message"]) == (
        409,
        f"remove db: volume is in use - [{service_id} {task['ID']}]",
    )

    # The service goes; its task still runs on the node until it has stopped.
    assert (await call(client, "DELETE", f"/services/{service_id}"))[0] == 200
    status, body = await call(client, "DELETE", "/volumes/db")
    assert (status, body["message"]) == (409, f"remove db: volume is in use - [{task['ID']}]")
    assert volumed.deleted == []

    await report(client, node_id, [task["ID"]], "shutdown")
    assert (await call(client, "DELETE", "/volumes/db"))[0] == 204
    assert volumed.deleted == [("db", "shoal", SHOAL_DEFAULTS)]
    assert (await call(client, "GET", "/volumes/db"))[0] == 404


async def test_volumed_refusing_keeps_the_volume(client: Client, volumed: FakeVolumed) -> None:
    await call(client, "POST", "/volumes/create", {"Name": "db", "Driver": "shoal"})
    await call(client, "POST", "/volumes/create", {"Name": "cache"})
    volumed.refuse = "filer 198.18.0.11:8888 unreachable"
    status, body = await call(client, "DELETE", "/volumes/db")
    assert (status, body["message"]) == (500, "remove db: filer 198.18.0.11:8888 unreachable")
    assert (await call(client, "GET", "/volumes/db"))[0] == 200
    # A local volume's data is on the nodes that used it: only the record goes.
    assert (await call(client, "DELETE", "/volumes/cache"))[0] == 204
    volumed.refuse = ""
    assert (await call(client, "DELETE", "/volumes/db"))[0] == 204
    assert [d[0] for d in volumed.deleted] == ["db"]


async def test_assignments_name_the_volumes_of_the_nodes_tasks(client: Client) -> None:
    node_id = await enroll(client, "worker-1")
    mounts = [mount("db", "shoal", replication="000"), mount("cache"), mount("db", read_only=True)]
    mounts[2]["Target"] = "/ro"
    _, created = await call(client, "POST", "/services/create", service("db", *mounts))
    await assigned(client, created["ID"], 1)
    _, got = await call(client, "GET", f"/shoal/dispatcher/assignments?node={node_id}")
    assert got["Volumes"] == [
        {"Name": "cache", "Driver": "local", "Options": {}},
        {"Name": "db", "Driver": "shoal", "Options": {"replication": "000", "sharing": "none"}},
    ]
    assert {"Index", "Tasks", "Secrets", "Configs"} <= set(got)


async def test_a_non_shared_volume_keeps_its_tasks_on_one_node(client: Client) -> None:
    first, second = await enroll(client, "worker-1"), await enroll(client, "worker-2")
    names = {first: "worker-1", second: "worker-2"}
    spec = service("db", mount("db", "shoal"), replicas=3)
    _, created = await call(client, "POST", "/services/create", spec)
    tasks = await assigned(client, created["ID"], 3)
    [holder] = {t["NodeID"] for t in tasks}
    other = second if holder == first else first
    # Shared, tasks spread as usual.
    _, web = await call(
        client,
        "POST",
        "/services/create",
        service("web", mount("site", "shoal", sharing="all"), replicas=2),
    )
    assert {t["NodeID"] for t in await assigned(client, web["ID"], 2)} == {first, second}

    # Its node drained, the tasks must move, but the volume is still in use
    # there until the old tasks have stopped: the new ones wait.
    await report(client, holder, [t["ID"] for t in tasks], "running")
    _, node = await call(client, "GET", f"/nodes/{holder}")
    node["Spec"]["Availability"] = "drain"
    path = f"/nodes/{holder}/update?version={node['Version']['Index']}"
    assert (await call(client, "POST", path, node["Spec"]))[0] == 200
    reason = f"no suitable node (volume db is in use on node {names[holder]})"

    async def waiting() -> bool:
        pending = [
            t
            for t in await tasks_of(client, created["ID"])
            if t["Status"]["State"] == "pending" and t["Status"].get("Err") == reason
        ]
        return len(pending) == 3

    await until(waiting)
    await report(client, holder, [t["ID"] for t in tasks], "shutdown")
    moved = await assigned(client, created["ID"], 3)
    assert {t["NodeID"] for t in moved} == {other}
