"""Drives one host's containerd (and runc underneath) over gRPC (DESIGN.md §2)."""
