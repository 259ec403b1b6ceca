"""Leader-only: places pending tasks on nodes."""
