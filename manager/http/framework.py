"""What every endpoint shares: the /v1.xx prefix, Docker's response headers,
JSON bodies with exactly `application/json`, errors as {"message": ...} with
Docker's status codes, query booleans and filters (docker-api.md §1)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from api.errors import ApiError

log = logging.getLogger("shoal.manager.api")

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
SERVER_HEADERS = {
    "Api-Version": API_VERSION,
    "OSType": "linux",
    "Docker-Experimental": "false",
    "Server": "Docker/20.10.24 (linux)",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class APIError(Exception):
    """An error for the client: HTTP status and Docker's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> APIError:
    return APIError(400, message)


def not_found(message: str) -> APIError:
    return APIError(404, message)


def conflict(message: str) -> APIError:
    return APIError(409, message)


def json_response(value: Any, status: int = 200) -> web.Response:
    # aiohttp's json_response adds "; charset=utf-8", which the Go client
    # does not accept as JSON when it parses errors.
    return web.Response(
        body=json.dumps(value, separators=(",", ":")).encode(),
        status=status,
        headers={"Content-Type": "application/json"},
    )


def error_response(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


@web.middleware
async def docker_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        refused = check_version(request)
        response = refused if refused is not None else await handler(request)
    except (APIError, ApiError) as exc:
        response = error_response(exc.status, exc.message)
    except web.HTTPNotFound:
        response = error_response(404, "page not found")
    except web.HTTPMethodNotAllowed:
        response = error_response(404, "page not found")
    except Exception as exc:  # a bug of ours: still a JSON answer, and a logged traceback
        log.exception("internal error on %s %s", request.method, request.path)
        response = error_response(500, f"internal error: {exc}")
    for key, value in SERVER_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


def check_version(request: web.Request) -> web.Response | None:
    """An error response for a /v1.xx prefix we do not serve, else None."""
    version = request.match_info.get("api_version")
    if version is None:
        return None
    if _version_tuple(version) > _version_tuple(API_VERSION):
        return error_response(
            400,
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}",
        )
    if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
        return error_response(
            400,
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version",
        )
    return None


def add_route(router: web.UrlDispatcher, method: str, path: str, handler: Handler) -> None:
    """Serve `path` both bare and as /v{version}/path."""
    router.add_route(method, path, handler)
    router.add_route(method, "/v{api_version:[0-9.]+}" + path, handler)


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    if name not in request.query:
        return default
    return request.query[name].strip().lower() not in ("", "0", "no", "false", "none")


def parse_filters(request: web.Request, allowed: set[str]) -> dict[str, list[str]]:
    """Docker's filters: {"k":{"v":true}} (Go) or {"k":["v"]} (docker-py)."""
    raw = request.query.get("filters", "")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise bad_request(f"invalid filter: {raw}") from None
    if not isinstance(data, dict):
        raise bad_request(f"invalid filter: {raw}")
    filters: dict[str, list[str]] = {}
    for key, value in data.items():
        if key not in allowed:
            raise bad_request(f"Invalid filter '{key}'")
        if isinstance(value, dict):
            filters[key] = [str(k) for k, v in value.items() if v]
        elif isinstance(value, list):
            filters[key] = [str(v) for v in value]
        else:
            filters[key] = [str(value)]
    return filters


async def read_json(request: web.Request) -> Any:
    body = await request.read()
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise bad_request(f"invalid JSON body: {exc}") from None


def required_version(request: web.Request, kind: str) -> int:
    text = request.query.get("version")
    if text is None:
        raise bad_request(f"invalid {kind} version '': missing version")
    try:
        return int(text)
    except ValueError:
        raise bad_request(
            f"invalid {kind} version '{text}': strconv.ParseUint: parsing \"{text}\": "
            "invalid syntax"
        ) from None
