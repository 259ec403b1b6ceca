"""A manager's Raft membership on disk and the requests that change it.

Joining and leaving through the API restart the manager: the change is
written as a pending file first, and takes effect at the next start (the old
Raft files go aside, the new peers and key come in). The list of peers is
kept on disk for restarts. Joining first exchanges the manager token for a
manager certificate, then asks the leader to add us, over mutual TLS."""

from __future__ import annotations

import json
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from api.enroll import EnrollError, Issued, enroll

PENDING_FILE = "pending-membership.json"


class MembershipError(RuntimeError):
    """The join or leave cannot happen; the message says why."""


def read_or_create(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(make)
    tmp.chmod(0o600)
    tmp.replace(path)
    return make


class MembershipFiles:
    def __init__(
        self, data_dir: Path, default_peers: tuple[str, ...], identity: list[Path]
    ) -> None:
        self.data_dir = data_dir
        self.default_peers = default_peers
        self.identity = identity  # certificate files, gone with a leave
        self.peers_file = data_dir / "raft-peers.json"
        self.key_file = data_dir / "raft.key"

    def known_peers(self) -> list[str]:
        if self.peers_file.exists():
            return [str(p) for p in json.loads(self.peers_file.read_text())]
        return list(self.default_peers)

    def save_peers(self, peers: list[str]) -> None:
        tmp = self.peers_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(set(peers))))
        tmp.replace(self.peers_file)

    def apply_pending(self) -> None:
        pending = self.data_dir / PENDING_FILE
        if not pending.exists():
            return
        change = json.loads(pending.read_text())
        raft_dir = self.data_dir / "raft"
        if raft_dir.exists():
            raft_dir.rename(self.data_dir / f"raft.before-{change['kind']}.{time.time_ns()}")
        self.key_file.unlink(missing_ok=True)
        self.peers_file.unlink(missing_ok=True)
        if change["kind"] == "join":
            read_or_create(self.key_file, change["key"])
            self.save_peers(change["peers"])
        else:  # a node that left has no identity in any cluster
            for path in self.identity:
                path.unlink(missing_ok=True)
        pending.unlink()

    def write_pending(self, change: dict[str, Any]) -> None:
        path = self.data_dir / PENDING_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(change))
        tmp.chmod(0o600)
        tmp.replace(path)


async def manager_certificate(remote: str, token: str, node_id: str, advertise: str) -> Issued:
    try:
        issued = await enroll(remote, token, node_id, advertise)
    except (EnrollError, ValueError) as exc:
        raise MembershipError(str(exc)) from None
    if issued.role != "manager":
        raise MembershipError("this is a worker join token: a manager joins with the manager token")
    return issued


@dataclass(frozen=True)
class Joined:
    members: list[str]  # Raft addresses, the newcomer's included
    raft_key: str


async def ask_to_join(
    remote: str, tls: ssl.SSLContext, node_id: str, raft_addr: str, advertise: str
) -> Joined:
    body = {
        "NodeID": node_id,
        "RaftAddr": raft_addr,
        "AdvertiseAddr": advertise,
        "Hostname": socket.gethostname(),
    }
    url = f"https://{remote}/shoal/managers/join"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=body, ssl=tls) as reply,
        ):
            answer: dict[str, Any] = await reply.json(content_type=None)
            if reply.status != 200:
                raise MembershipError(str(answer.get("message") or answer))
    except aiohttp.ClientError as exc:
        raise MembershipError(f"cannot reach the manager at {remote}: {exc}") from None
    return Joined([str(m) for m in answer["Members"]], str(answer["RaftKey"]))


async def ask_to_leave(leader: str, tls: ssl.SSLContext, node_id: str, raft_addr: str) -> None:
    url = f"https://{leader}/shoal/managers/leave"
    body = {"NodeID": node_id, "RaftAddr": raft_addr}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=body, ssl=tls) as reply,
        ):
            if reply.status != 200:
                raise MembershipError(f"leaving failed: {await reply.text()}")
    except aiohttp.ClientError as exc:
        raise MembershipError(f"cannot reach the leader at {leader}: {exc}") from None
