"""Leader-only: turns services into tasks and keeps them whole."""
