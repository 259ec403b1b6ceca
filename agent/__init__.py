"""The node daemon: session with managers and task controllers (DESIGN.md §2)."""
