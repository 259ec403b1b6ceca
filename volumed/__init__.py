"""Distributed volumes on SeaweedFS (DESIGN.md §2)."""
