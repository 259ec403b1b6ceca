"""API errors, each carrying the HTTP status Docker answers with (docker-api.md §1).

The server turns any `ApiError` into `{"message": e.message}` with `e.status`;
clients turn such a reply back into the matching class with `error_for_status`.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

OUT_OF_SEQUENCE_MESSAGE = "rpc error: code = Unknown desc = update out of sequence"
NOT_IN_SWARM_MESSAGE = "This node is not part of a swarm"
NOT_A_MANAGER_MESSAGE = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster "
    "state. Please run this command on a manager node or promote the current node to a manager."
)
ALREADY_IN_SWARM_MESSAGE = (
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and '
    "join another one."
)


class ApiError(Exception):
    """Base of the errors the API reports; unexpected failures are 500."""

    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> bytes:
        """The JSON reply: `{"message": …}` is all the Docker clients read."""
        return msgspec.json.encode({"message": self.message})


class InvalidArgument(ApiError, ValueError):
    """Bad parameter, bad filter or failed precondition."""

    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class OutOfSequence(ApiError):
    """A write against a stale Version.Index. moby 20.10 answers 500 with the
    swarmkit gRPC text, never 409, and clients match on that; so do we."""

    status = 500

    def __init__(self, message: str = OUT_OF_SEQUENCE_MESSAGE) -> None:
        super().__init__(message)


class NotImplemented_(ApiError):  # the trailing _ because the builtin NotImplemented exists
    status = 501


class Unavailable(ApiError):
    """Not in a swarm, not a manager, no leader."""

    status = 503


def not_found(kind: str, ref: str) -> NotFound:
    """`service X not found`, as the `{id}` lookup reports a miss."""
    return NotFound(f"{kind} {ref} not found")


def ambiguous(kind: str, ref: str, matches: int) -> InvalidArgument:
    """`service X is ambiguous (N matches found)`, for a prefix that fits several."""
    return InvalidArgument(f"{kind} {ref} is ambiguous ({matches} matches found)")


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidArgument,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    501: NotImplemented_,
    503: Unavailable,
}


def error_for_status(status: int, message: str) -> ApiError:
    """The error a client raises for an error reply."""
    if status == 500 and message == OUT_OF_SEQUENCE_MESSAGE:
        return OutOfSequence()
    return _BY_STATUS.get(status, ApiError)(message)
