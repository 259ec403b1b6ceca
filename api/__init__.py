"""The contract: object model, errors and the async HTTP client (DESIGN.md §2)."""
