"""--force-new-cluster: a manager whose peers are lost for good restarts with
all its data and itself as the only Raft member.

1. Open the old journal and dump and apply every entry this manager knows to
   be committed: the store as it last knew it (acknowledged writes reach a
   manager's log and commit index with the next heartbeat).
2. Drop the other managers from the store (they rejoin as new managers).
3. Move the old Raft files aside and start a fresh Raft log whose first entry
   carries that store, so managers joining later replay it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import socket
import time
from pathlib import Path

from pysyncobj import SyncObj, SyncObjConf

from manager.store.raft import RaftProposer, _ReplicatedStore
from manager.store.state import StoreState

RECOVERY_TIMEOUT_SECONDS = 60.0
REGULAR_COMMAND = 0  # pysyncobj's _COMMAND_TYPE.REGULAR


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replay(raft_dir: Path, password: str) -> StoreState:
    state = StoreState()
    conf = SyncObjConf(
        password=password,
        journalFile=str(raft_dir / "raft.journal"),
        fullDumpFile=str(raft_dir / "raft.dump"),
        dynamicMembershipChange=False,
        useFork=False,
        autoTickPeriod=0.005,
    )
    syncobj = SyncObj(
        f"127.0.0.1:{_free_loopback_port()}", [], conf=conf, consumers=[_ReplicatedStore(state)]
    )
    try:
        # pysyncobj replays its journal up to the commit index it recorded (the
        # old members are gone, so nothing more will commit). Wait until that
        # stops moving; _apply_tail then takes the rest of the log.
        deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
        last, settled = -1, 0
        while settled < 20:
            applied = int(syncobj.getStatus()["last_applied"])
            settled = settled + 1 if applied == last else 0
            last = applied
            if time.monotonic() > deadline:
                raise RuntimeError("replaying the old Raft log did not finish")
            time.sleep(0.03)
        _apply_tail(syncobj, state)
    finally:
        syncobj.destroy_synchronous()
    return state


def _apply_tail(syncobj: SyncObj, state: StoreState) -> None:
    """Entries past the recorded commit index: a write the old leader
    acknowledged may have reached this log before the heartbeat that would
    have told this manager it committed. As etcd's --force-new-cluster does,
    keep them. Our only replicated call carries one argument, the entry."""
    applied = int(syncobj.getStatus()["last_applied"])
    log = syncobj._SyncObj__raftLog  # the entries pysyncobj keeps after its dump
    for i in range(len(log)):
        command, index, _term = log[i]
        if index <= applied or not command or command[0] != REGULAR_COMMAND:
            continue
        call = pickle.loads(command[1:])  # our own journal, written by pysyncobj
        if isinstance(call, tuple) and len(call) >= 2 and call[1]:
            state.apply(call[1][0])


def force_new_cluster(data_dir: Path, password: str, node_id: str) -> bytes:
    """Recover the store from the old Raft files, as a snapshot the caller
    seeds its fresh Raft log with."""
    raft_dir = data_dir / "raft"
    state = _replay(raft_dir, password) if raft_dir.exists() else StoreState()
    snapshot = json.loads(state.snapshot())
    snapshot["objects"]["node"] = [
        n
        for n in snapshot["objects"].get("node", [])
        if n.get("ID") == node_id or not n.get("RaftAddr")
    ]
    if raft_dir.exists():
        raft_dir.rename(data_dir / f"raft.before-force-new-cluster.{int(time.time())}")
    (data_dir / "raft-peers.json").unlink(missing_ok=True)
    return json.dumps(snapshot).encode()


async def seed_when_leader(proposer: RaftProposer, snapshot: bytes) -> None:
    """The fresh log's first entry is the recovered store."""
    while not proposer.is_leader():
        proposer.leader_changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):  # not wait_for: see reads.py
                await proposer.leader_changed.wait()
    await proposer.propose_restore(snapshot)
