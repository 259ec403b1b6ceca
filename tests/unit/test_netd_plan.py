"""netd's plan for a node, from the cluster's network state: bridges,
remote endpoints, VIP and published-port rules."""

from __future__ import annotations

from netd.model import Attachment, Link, parse_snapshot
from netd.plan import bridge_name, plan_node

INGRESS, WEB, OTHER = "i" * 25, "w" * 25, "o" * 25


def snapshot() -> dict[str, object]:
    def task(tid: str, node: str, addr: str, net: str, live: bool = True) -> dict[str, object]:
        return {
            "NetworkID": net, "Kind": "task", "ID": tid, "NodeID": node,
            "NodeAddr": f"198.18.0.{10 + int(node[-1])}", "Address": addr,
            "MAC": "", "Names": [f"web.{tid}"], "ServiceID": "svc", "ServiceName": "web",
            "Live": live,
        }  # fmt: skip

    return {
        "Index": 7,
        "Networks": [
            {
                "ID": INGRESS,
                "Name": "ingress",
                "VNI": 4096,
                "Subnet": "10.0.0.0/24",
                "Gateway": "10.0.0.1",
                "Ingress": True,
            },
            {"ID": WEB, "Name": "web", "VNI": 4097, "Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"},
            {
                "ID": OTHER,
                "Name": "other",
                "VNI": 4098,
                "Subnet": "10.0.2.0/24",
                "Gateway": "10.0.2.1",
            },
        ],
        "Endpoints": [
            task("t1", "n1", "10.0.1.3/24", WEB),
            task("t2", "n2", "10.0.1.4/24", WEB),
            task("t3", "n2", "10.0.1.5/24", WEB, live=False),
            task("t1", "n1", "10.0.0.3/24", INGRESS),
            task("t2", "n2", "10.0.0.4/24", INGRESS),
            {
                "NetworkID": INGRESS,
                "Kind": "node",
                "ID": "n1",
                "NodeID": "n1",
                "NodeAddr": "198.18.0.11",
                "Address": "10.0.0.100/24",
                "Live": True,
            },
            {
                "NetworkID": INGRESS,
                "Kind": "node",
                "ID": "n2",
                "NodeID": "n2",
                "NodeAddr": "198.18.0.12",
                "Address": "10.0.0.101/24",
                "Live": True,
            },
        ],
        "Services": [
            {
                "ID": "svc",
                "Name": "web",
                "EndpointMode": "vip",
                "VIPs": [
                    {"NetworkID": WEB, "Address": "10.0.1.2/24"},
                    {"NetworkID": INGRESS, "Address": "10.0.0.2/24"},
                ],
                "Ports": [
                    {
                        "Protocol": "tcp",
                        "TargetPort": 80,
                        "PublishedPort": 30000,
                        "PublishMode": "ingress",
                    }
                ],
            },
            {
                "ID": "idle",
                "Name": "idle",
                "EndpointMode": "vip",
                "VIPs": [{"NetworkID": WEB, "Address": "10.0.1.9/24"}],
            },
        ],
    }


def local() -> dict[str, Attachment]:
    links = (
        Link(WEB, "svt1", "10.0.1.3/24", "02:42:0a:00:01:03"),
        Link(INGRESS, "svt1b", "10.0.0.3/24", "02:42:0a:00:00:03"),
    )
    return {"t1": Attachment("t1", "ns-t1", "sgt1", "172.18.0.2", links)}


def test_a_node_gets_bridges_for_its_networks_and_the_ingress() -> None:
    plan = plan_node(parse_snapshot(snapshot()), "n1", local(), "172.18.0.0/16")
    assert set(plan.networks) == {WEB, INGRESS}  # not OTHER: nothing of ours is on it
    assert plan.bridge_address == {INGRESS: ("10.0.0.100/24", "02:42:0a:00:00:64")}
    # Remote endpoints only, the not-yet-running task included (it must be reachable
    # as soon as it starts); the other node's own ingress address too.
    assert {p.ip for p in plan.peers[WEB]} == {"10.0.1.4", "10.0.1.5"}
    assert {p.ip for p in plan.peers[INGRESS]} == {"10.0.0.4", "10.0.0.101"}
    assert all(p.remote == "198.18.0.12" for p in plan.peers[WEB])


def test_vips_lead_to_running_tasks_and_published_ports_to_the_ingress() -> None:
    plan = plan_node(parse_snapshot(snapshot()), "n1", local(), "172.18.0.0/16")
    rules = plan.container_rules["t1"]
    assert "ip daddr 10.0.1.2 dnat to numgen random mod 2 map { 0 : 10.0.1.3, 1 : 10.0.1.4 }" in (
        rules
    )
    assert "ip daddr 10.0.1.9 reject" in rules  # a VIP with no running task
    host = plan.host_rules
    assert (
        "fib daddr type local tcp dport 30000 dnat to numgen random mod 2 map "
        "{ 0 : 10.0.0.3, 1 : 10.0.0.4 } : 80" in host
    )
    assert f'oifname "{bridge_name(INGRESS)}" masquerade' in host
    assert "10.0.2.0/24" in host  # containers never reach into an overlay via the gateway


def test_a_node_without_containers_still_joins_the_ingress() -> None:
    plan = plan_node(parse_snapshot(snapshot()), "n2", {}, "172.18.0.0/16")
    assert set(plan.networks) == {INGRESS}
    assert plan.container_rules == {}
