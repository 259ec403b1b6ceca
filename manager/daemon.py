"""The manager daemon: the Raft-replicated store and the API, on TCP and on a
unix socket, plus /metrics. `async with Manager(config) as m: await m.run()`."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from api.security import CertFiles
from manager.certificates import ManagerCertificates
from manager.dispatcher import Dispatcher, DispatcherLoops
from manager.http.app import make_app
from manager.http.context import APIContext, Leadership, ManagerInfo
from manager.http.dispatcher_api import DISPATCHER, DispatcherRef
from manager.http.forward import LEADER_API, PEER_TLS
from manager.http.join import MEMBERSHIP, MEMBERSHIP_REMOVE, RAFT_KEY
from manager.http.lookup import new_id
from manager.http.swarm import AFTER_INIT, MEMBERSHIP_CONTROL, manager_node
from manager.http.system import cluster_of
from manager.leader import Component, LeaderOnly
from manager.membership import (
    Joined,
    MembershipFiles,
    ask_to_join,
    ask_to_leave,
    manager_certificate,
    read_or_create,
)
from manager.metrics import ManagerMetrics, StoreCollector
from manager.reads import COMMIT_INDEX_PATH, FollowerReads, commit_index
from manager.reconciler import Reconciler
from manager.recovery import force_new_cluster, seed_when_leader
from manager.secret_box import SecretBox
from manager.store.etcd import EtcdProposer
from manager.store.proposer import NoLeader
from manager.store.raft import RaftConfig, RaftProposer
from manager.store.state import ObjectExists, StoreState
from manager.store.store import Store, WriteTx
from manager.volumed_client import VolumedClient


class _Restart(Exception):
    """Ends the components' task group when the manager restarts itself."""


class ManagerError(RuntimeError):
    """The manager cannot start as configured; the message says why."""


@dataclass(frozen=True)
class ManagerConfig:
    data_dir: Path
    advertise_addr: str  # host:port others reach this manager's API at
    listen_addr: str = "0.0.0.0:2377"
    raft_addr: str = ""  # host:port; default: the advertise host, port 4242
    socket_path: Path | None = None  # default: <data-dir>/manager.sock
    join: str | None = None  # host:port of a manager to join
    join_token: str | None = None
    peers: tuple[str, ...] = field(default_factory=tuple)
    force_new_cluster: bool = False
    store: str = "raft"  # raft | etcd
    etcd_endpoints: tuple[str, ...] = ()
    # With etcd: the key secrets are sealed under, the same file on every
    # manager (default: <data-dir>/secrets-key, created on first start).
    secrets_key_file: Path | None = None
    # volumed's socket on this host: a removed distributed volume's data is
    # deleted through it (None: only the volume's record goes).
    volumed_socket: Path | None = None

    @property
    def raft_address(self) -> str:
        return self.raft_addr or f"{self.advertise_addr.rsplit(':', 1)[0]}:4242"


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ManagerError(f"invalid address {address!r}: want host:port")
    return host, int(port)


class Manager:
    def __init__(self, config: ManagerConfig) -> None:
        self.config = config
        self.metrics = ManagerMetrics()
        self.state = StoreState()
        self.proposer: RaftProposer | None = None
        self.etcd: EtcdProposer | None = None
        self.store: Store | None = None
        self.runner: web.AppRunner | None = None
        self.node_id = ""
        self.api_info: ManagerInfo | None = None
        self.reads: FollowerReads | None = None
        self._seed: bytes | None = None
        self.leader_components: list[Callable[[], Component]] = [
            self._reconciler,
            self._dispatcher_loops,
        ]
        self.dispatcher: Dispatcher | None = None
        self.dispatcher_ref = DispatcherRef()
        self.restart = asyncio.Event()
        self.certs = ManagerCertificates(
            CertFiles(config.data_dir / "certificates"),
            lambda: self.node_id,
            config.advertise_addr.rsplit(":", 1)[0],
        )
        self._tls_site: web.TCPSite | None = None
        files = self.certs.files
        self.membership = MembershipFiles(
            config.data_dir, config.peers, [files.ca, files.cert, files.key]
        )

    async def __aenter__(self) -> Manager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.membership.key_file
        self.membership.apply_pending()
        self.node_id = read_or_create(cfg.data_dir / "node-id", new_id())
        if cfg.store == "etcd":
            await self._start_on_etcd()
            return
        peers = self.membership.known_peers()
        if cfg.join and not key_file.exists():
            joined = await self._join(cfg.join, cfg.join_token or "")
            read_or_create(key_file, joined.raft_key)
            peers = [m for m in joined.members if m != cfg.raft_address]
            self.membership.save_peers(peers)
        if cfg.force_new_cluster:
            if not key_file.exists():
                raise ManagerError(f"--force-new-cluster: {cfg.data_dir} holds no cluster")
            # In a thread: the replay blocks, and SIGTERM must still stop us.
            self._seed = await asyncio.to_thread(
                force_new_cluster, cfg.data_dir, key_file.read_text().strip(), self.node_id
            )
            peers = []
        key = read_or_create(key_file, secrets.token_urlsafe(32))
        raft = RaftConfig(cfg.raft_address, tuple(peers), cfg.data_dir / "raft", password=key)
        self.proposer = RaftProposer(self.state, raft)
        self.proposer.start()
        self.store = Store(self.state, self.proposer, self.metrics.observe_write)
        await self._serve(key, key)

    async def _start_on_etcd(self) -> None:
        """The store lives in an external etcd: every manager talks to it, so
        there is no Raft membership to join; the leader holds an etcd lease."""
        cfg = self.config
        if not cfg.etcd_endpoints:
            raise ManagerError("--store etcd needs --etcd-endpoints")
        self.etcd = EtcdProposer(self.state, list(cfg.etcd_endpoints), identity=cfg.raft_address)
        try:
            await self.etcd.start()
        except Exception as exc:
            raise ManagerError(
                f"cannot use etcd at {', '.join(cfg.etcd_endpoints)}: {exc}"
            ) from None
        self.store = Store(self.state, self.etcd, self.metrics.observe_write)
        key_file = cfg.secrets_key_file or cfg.data_dir / "secrets-key"
        await self._serve(None, read_or_create(key_file, secrets.token_urlsafe(32)))

    async def _track_peers(self) -> None:
        """Keep the list of other managers on disk, for the next start."""
        assert self.store is not None
        while True:
            members = self.store.view(
                lambda tx: [str(n["RaftAddr"]) for n in tx.all("node") if n.get("RaftAddr")]
            )
            peers = [m for m in members if m != self.config.raft_address]
            if peers and sorted(set(peers)) != sorted(set(self.membership.known_peers())):
                self.membership.save_peers(peers)
            await asyncio.sleep(1.0)

    async def join_swarm(self, remote: str, token: str) -> None:
        """`docker swarm join` on this manager: join, then restart into the cluster."""
        joined = await self._join(remote, token)
        peers = [m for m in joined.members if m != self.config.raft_address]
        if self.api_info is not None:
            self.api_info.joining = True
        self._restart_with({"kind": "join", "key": joined.raft_key, "peers": peers})

    async def leave_swarm(self) -> None:
        """`docker swarm leave --force`: out of Raft, then restart alone and empty."""
        assert self.store is not None
        others = self.store.view(
            lambda tx: [n for n in tx.all("node") if n.get("RaftAddr") and n["ID"] != self.node_id]
        )
        if others and self.reads is not None:
            leader, tls = self.reads.leader_api(), self.certs.client_tls()
            if leader is None or tls is None:
                raise ManagerError(
                    "the cluster has no leader to leave, or this manager no certificate"
                )
            await ask_to_leave(leader, tls, self.node_id, self.config.raft_address)
        self._restart_with({"kind": "leave"})

    def _restart_with(self, change: dict[str, Any]) -> None:
        self.membership.write_pending(change)
        # Answer the request first, then restart.
        asyncio.get_running_loop().call_later(0.2, self.restart.set)

    async def _join(self, remote: str, token: str) -> Joined:
        """The manager certificate for the token (pinning the CA by its
        digest), then a place in Raft."""
        cfg = self.config
        issued = await manager_certificate(remote, token, self.node_id, cfg.advertise_addr)
        issued.save(self.certs.files)
        if issued.node_id != self.node_id:
            self.node_id = issued.node_id
            (cfg.data_dir / "node-id").write_text(issued.node_id)
        if not self.certs.load() or self.certs.client is None:
            raise ManagerError("the certificate this manager received cannot be loaded")
        return await ask_to_join(
            remote, self.certs.client, self.node_id, cfg.raft_address, cfg.advertise_addr
        )

    async def _serve(self, raft_key: str | None, cluster_key: str) -> None:
        assert self.store is not None
        cfg = self.config
        leadership: Leadership
        if self.proposer is not None:
            self.reads = FollowerReads(self.proposer, self.store, self.certs.client_tls)
            leadership = self.reads
            raft_status = self.proposer.status
        else:
            assert self.etcd is not None
            leadership = self.etcd
            raft_status = dict
        info = ManagerInfo(
            node_id=self.node_id,
            hostname=socket.gethostname(),
            advertise_addr=cfg.advertise_addr,
            raft_addr=cfg.raft_address,
            leadership=leadership,
            ncpu=os.cpu_count() or 1,
            memory_bytes=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        )
        self.api_info = info
        volume_data = VolumedClient(cfg.volumed_socket) if cfg.volumed_socket else None
        app = make_app(APIContext(self.store, info, SecretBox(cluster_key), volume_data))
        app[DISPATCHER] = self.dispatcher_ref
        app[PEER_TLS] = self.certs.client_tls
        app[AFTER_INIT] = self._certificate_ready
        if self.proposer is not None and raft_key is not None:
            app[RAFT_KEY] = raft_key
            app[MEMBERSHIP] = self.proposer.add_member
            app[MEMBERSHIP_REMOVE] = self.proposer.remove_member
            app[MEMBERSHIP_CONTROL] = self
            assert self.reads is not None
            app[LEADER_API] = self.reads.leader_api
        self.metrics.watch(StoreCollector(self.store, leadership.is_leader, raft_status))

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=self.metrics.render(), content_type="text/plain")

        app.router.add_get("/metrics", metrics)
        app.router.add_get(COMMIT_INDEX_PATH, commit_index)
        # Long polls (agents' assignments) must not hold a stopping manager for long.
        self.runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self.runner.setup()
        _split(cfg.listen_addr)  # a bad address fails the start, not the first init
        if self.certs.load():
            await self._open_tls()
        socket_path = cfg.socket_path or cfg.data_dir / "manager.sock"
        socket_path.unlink(missing_ok=True)
        await web.UnixSite(self.runner, str(socket_path)).start()
        socket_path.chmod(0o660)

    async def _open_tls(self) -> None:
        """The TCP listener, TLS only: opened once this manager has a certificate
        (at start, after `swarm init`, or once it signed its own)."""
        if self._tls_site is not None or self.runner is None:
            return
        host, port = _split(self.config.listen_addr)
        site = web.TCPSite(self.runner, host, port, ssl_context=self.certs.server)
        await site.start()
        self._tls_site = site

    async def _certificate_ready(self) -> None:
        assert self.store is not None
        self.certs.refresh(self.store)
        if self.certs.load():
            await self._open_tls()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.reads is not None:
            await self.reads.close()
        if self.proposer is not None:
            await self.proposer.stop()
        if self.etcd is not None:
            await self.etcd.stop()

    def _dispatcher_loops(self) -> Component:
        # A fresh dispatcher each term: heartbeats seen by a former term are stale.
        assert self.store is not None
        self.dispatcher = Dispatcher(self.store)
        self.dispatcher_ref.dispatcher = self.dispatcher
        return DispatcherLoops(self.dispatcher)

    def _reconciler(self) -> Component:
        assert self.store is not None
        return Reconciler(self.store)

    async def run(self) -> bool:
        """Until cancelled (False) or a join/leave needs a restart (True); a
        component that crashes stops the manager loudly."""
        restarting = False
        try:
            await self._run_components()
        except* _Restart:
            restarting = True
        return restarting

    async def _run_components(self) -> None:
        assert self.store is not None
        async with asyncio.TaskGroup() as group:
            if self.proposer is not None:
                group.create_task(self._track_peers())
            group.create_task(self._register_self())
            group.create_task(self.certs.keep_fresh(self.store, self._open_tls))
            if self._seed is not None:
                assert self.proposer is not None
                group.create_task(seed_when_leader(self.proposer, self._seed))
            leadership = self.proposer or self.etcd
            assert leadership is not None
            # The orchestrator, allocator and scheduler (the dispatcher joins
            # them with the agents) run on the leader only.
            group.create_task(LeaderOnly(leadership, self.leader_components).run())
            await self.restart.wait()  # serve until cancelled, or restart for a join/leave
            raise _Restart

    async def _register_self(self) -> None:
        """A manager that joined writes its own node object once it is in Raft
        (the leader could not: the membership change commits only with it)."""
        assert self.store is not None and self.api_info is not None
        info = self.api_info

        def register(tx: WriteTx) -> bool:
            if cluster_of(tx) is None:
                return False  # not replicated here yet (or no swarm yet)
            if tx.get("node", self.node_id) is None:
                tx.create("node", manager_node(info))
            return True

        while True:
            try:
                if await self.store.update(register):
                    return
            except (NoLeader, ObjectExists):
                pass
            await asyncio.sleep(0.5)
