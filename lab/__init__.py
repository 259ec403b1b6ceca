"""A local multi-host lab: hosts as network namespaces on this machine (DESIGN.md §5)."""
