"""The manager's HTTP API: the swarm subset of the Docker Engine API v1.41."""
