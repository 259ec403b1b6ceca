"""Managers: store, Raft, API server and the leader-only components (DESIGN.md §2)."""
