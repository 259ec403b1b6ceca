"""The Proposer: how a batch of store actions reaches every replica. The store
knows only this small interface; the backends are in-memory (tests and single
processes), Raft (pysyncobj, the default) and etcd."""

from __future__ import annotations

from typing import Protocol

from manager.store.state import Action, BatchResult, StoreState, encode_entry


class NoLeader(Exception):
    """No leader can take writes now (no quorum); reads still answer."""


class Proposer(Protocol):
    async def propose(self, actions: list[Action], timestamp: str) -> BatchResult:
        """Replicate one atomic batch; return once it is applied on this replica."""
        ...

    def is_leader(self) -> bool: ...

    async def read_barrier(self) -> None:
        """Return once this replica has applied all the leader had committed."""
        ...


class MemoryProposer:
    """One replica, no log: each batch applies at once. For component tests."""

    def __init__(self, state: StoreState) -> None:
        self.state = state

    async def propose(self, actions: list[Action], timestamp: str) -> BatchResult:
        return self.state.apply(encode_entry(timestamp, [actions]))[0]

    def is_leader(self) -> bool:
        return True

    async def read_barrier(self) -> None:
        return None
