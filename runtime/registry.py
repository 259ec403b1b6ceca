"""An asyncio client for the OCI Distribution (Docker Registry HTTP API v2):
fetch manifests and blobs with their digests checked, push blobs and manifests,
and anonymous bearer-token auth."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from runtime.reference import ImageReference

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

# containerd's limit too: a manifest is small JSON, so anything bigger is a
# broken or hostile registry, not something to hold in memory.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_SMALL_BODY = 64 * 1024  # error documents and token responses
CHUNK = 1024 * 1024
# "docker.io" names images; the API itself is served from this host.
DOCKER_HUB_API = "registry-1.docker.io"
# Codes that mean "no such image" even when a registry does not answer 404.
NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"})

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
# One auth-param of a WWW-Authenticate challenge: key=token or key="quoted".
_PARAM = re.compile(r'[\s,]*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))[\s,]*')
_SCHEME = re.compile(r"[\s,]*([A-Za-z0-9!#$%&'*+.^_`|~-]+)[\s,]*")


class RegistryError(Exception): ...  # every message names the image and the step that failed


class ImageNotFound(RegistryError): ...  # 404, MANIFEST_UNKNOWN, NAME_UNKNOWN, BLOB_UNKNOWN


class DigestMismatch(RegistryError): ...  # content differs from its digest or size


class RegistryUnreachable(RegistryError): ...  # refused, timed out, DNS, dropped


class RegistryAuthError(RegistryError): ...  # 401/403 after bearer auth, or Basic wanted


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str  # sha256 of body
    body: bytes


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _parse_challenges(values: list[str]) -> list[tuple[str, dict[str, str]]]:
    """WWW-Authenticate values -> [(lowercase scheme, params)]; one header may
    carry several challenges, and a registry may send several headers."""
    challenges: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos = 0
        while pos < len(value):
            # A key=value belongs to the challenge before it; a bare token starts one.
            match = _PARAM.match(value, pos) if challenges else None
            if match is not None:
                key, quoted, bare = match.groups()
                text = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
                challenges[-1][1][key.lower()] = text
            elif (match := _SCHEME.match(value, pos)) is not None:
                challenges.append((match.group(1).lower(), {}))
            else:
                break  # unparseable tail: keep what was understood
            pos = match.end()
    return challenges


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or more than limit bytes of it: enough to tell "too big" apart."""
    body = bytearray()
    async for part in resp.content.iter_any():
        body += part
        if len(body) > limit:
            break
    return bytes(body)


Fail = Callable[[str], Exception]  # makes the exception for a digest or size mismatch
Body = bytes | AsyncIterable[bytes]  # an upload: in memory, or streamed (sent only once)

# Failures of the connection rather than of the request: worth a retry later.
_TRANSIENT = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


def _client_error(exc: Exception, prefix: str, peer: str) -> RegistryError:
    """aiohttp's exceptions as ours, so callers catch one family."""
    # TimeoutError and some aiohttp errors stringify to "".
    detail = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
    if isinstance(exc, _TRANSIENT):
        return RegistryUnreachable(f"{prefix}: {peer} unreachable: {detail}")
    return RegistryError(f"{prefix}: {detail}")


async def _verified(
    chunks: AsyncIterable[bytes], digest: str, size: int | None, fail: Fail, hold: bool = False
) -> AsyncIterator[bytes]:
    """Pass chunks through, hashing them; raise fail(why) after the last chunk
    if the digest or size is wrong, or as soon as there is more than size.
    hold keeps the final chunk back until the data checks out, so an
    upload of bad data never reaches its Content-Length and cannot complete."""
    hasher, seen, held = hashlib.sha256(), 0, b""
    async for chunk in chunks:
        seen += len(chunk)
        if size is not None and seen > size:
            raise fail(f"more than the {size} bytes expected")
        hasher.update(chunk)
        if hold:
            chunk, held = held, chunk
        if chunk:
            yield chunk
    if size is not None and seen != size:
        raise fail(f"{seen} bytes, not the {size} expected")
    if "sha256:" + hasher.hexdigest() != digest:
        raise fail(f"content has digest sha256:{hasher.hexdigest()}")
    if held:
        yield held


async def _raise_for_status(resp: aiohttp.ClientResponse, prefix: str) -> None:
    if 200 <= resp.status < 300:
        return
    code, message = "", ""
    try:
        doc: Any = json.loads(await _read_at_most(resp, MAX_SMALL_BODY))
        first = doc["errors"][0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, LookupError, TypeError, AttributeError):
        pass  # no error document: the status line is all there is
    detail = " ".join(filter(None, [code, message[:200] or resp.reason or ""]))
    suffix = f" (HTTP {resp.status}{': ' + detail if detail else ''})"
    if resp.status in (401, 403):
        raise RegistryAuthError(f"{prefix}: access denied{suffix}")
    if resp.status == 404 or code in NOT_FOUND_CODES:
        raise ImageNotFound(f"{prefix}: not found{suffix}")
    raise RegistryError(f"{prefix}: failed{suffix}")


def _media_type(content_type: str, body: bytes) -> str:
    """Content-Type, else the document's own mediaType: some registries label
    every manifest application/json."""
    header = content_type.split(";", 1)[0].strip().lower()
    if header in MANIFEST_MEDIA_TYPES:
        return header
    try:
        declared = json.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    return declared if isinstance(declared, str) else header


class RegistryClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        insecure_registries: frozenset[str] = frozenset(),
        timeout: float = 30.0,
    ) -> None:
        self._session = session
        self._insecure = insecure_registries
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # Blobs can be large: bound each socket wait, not the whole transfer.
        self._stream_timeout = aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout)
        # Anonymous bearer tokens per (registry, scope); a stale one earns a 401,
        # which fetches a fresh one, so expiry needs no bookkeeping.
        self._tokens: dict[tuple[str, str], str] = {}

    async def get_manifest(self, ref: ImageReference, reference: str | None = None) -> Manifest:
        reference = ref.reference if reference is None else reference
        self._check(ref, reference)
        prefix = f"{ref.name}: fetching manifest {reference}"
        headers = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
        url = self._url(ref, "manifests", reference)
        async with self._send(ref, "GET", url, prefix, headers=headers) as resp:
            body = await _read_at_most(resp, MAX_MANIFEST_BYTES)
            content_type = resp.headers.get("Content-Type", "")
            claimed = resp.headers.get("Docker-Content-Digest", "")
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{prefix}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
        digest = sha256_digest(body)
        if ":" in reference and digest != reference:
            raise DigestMismatch(f"{prefix}: registry sent content with digest {digest}")
        # Only sha256 can be checked here; another algorithm in the header is
        # not evidence of corruption.
        if claimed.startswith("sha256:") and claimed != digest:
            raise DigestMismatch(f"{prefix}: content has digest {digest}, header says {claimed}")
        media_type = _media_type(content_type, body)
        if media_type not in MANIFEST_MEDIA_TYPES:
            raise RegistryError(f"{prefix}: unsupported manifest type {media_type!r}")
        return Manifest(media_type=media_type, digest=digest, body=body)

    async def blob_chunks(
        self, ref: ImageReference, digest: str, size: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a blob. The digest (and size) are checked as it streams and a
        mismatch raises after the last chunk, so a consumer that commits only
        once the iterator is exhausted never commits bad data."""
        self._check(ref, digest, digest_only=True)
        prefix = f"{ref.name}: fetching blob {digest}"

        def fail(why: str) -> DigestMismatch:
            return DigestMismatch(f"{prefix}: {why}")

        url = self._url(ref, "blobs", digest)
        async with self._send(ref, "GET", url, prefix, stream=True) as resp:
            async for chunk in _verified(resp.content.iter_chunked(CHUNK), digest, size, fail):
                yield chunk

    async def has_blob(self, ref: ImageReference, digest: str) -> bool:
        return await self._has_blob(ref, digest, push=False)

    async def _has_blob(self, ref: ImageReference, digest: str, push: bool) -> bool:
        self._check(ref, digest, digest_only=True)
        url, prefix = self._url(ref, "blobs", digest), f"{ref.name}: checking blob {digest}"
        try:
            async with self._send(ref, "HEAD", url, prefix, push=push):
                return True
        except ImageNotFound:
            return False

    async def push_blob(self, ref: ImageReference, digest: str, size: int, data: Body) -> None:
        """Upload a blob monolithically unless the registry has it already."""
        self._check(ref, digest, digest_only=True)
        prefix = f"{ref.name}: pushing blob {digest}"
        # aiohttp reports an exception from a request body as a connection
        # error, so fail() keeps ours to re-raise.
        failures: list[DigestMismatch] = []

        def fail(why: str) -> DigestMismatch:
            failures.append(DigestMismatch(f"{prefix}: {why}"))
            return failures[-1]

        if isinstance(data, bytes) and (len(data) != size or sha256_digest(data) != digest):
            raise fail(f"data has {len(data)} bytes and digest {sha256_digest(data)}")
        # The push scope from the start, so one token serves HEAD, POST and PUT.
        if await self._has_blob(ref, digest, push=True):
            return
        start = self._url(ref, "blobs", "uploads", "")
        async with self._send(ref, "POST", start, prefix, push=True) as resp:
            location = resp.headers.get("Location", "")
            base = resp.url
        if not location:
            raise RegistryError(f"{prefix}: registry gave no upload Location")
        upload = self._with_digest(base, location, digest, prefix)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        body = data if isinstance(data, bytes) else _verified(data, digest, size, fail, hold=True)
        try:
            async with self._send(
                ref, "PUT", upload, prefix, push=True, headers=headers, data=body, stream=True
            ):
                pass
        except RegistryError:
            if failures:
                raise failures[-1] from None
            raise

    async def push_manifest(
        self, ref: ImageReference, manifest: Manifest, tag: str | None = None
    ) -> None:
        target = tag if tag is not None else ref.reference
        self._check(ref, target)
        prefix = f"{ref.name}: pushing manifest {target}"
        body, actual = manifest.body, sha256_digest(manifest.body)
        if actual != manifest.digest or (":" in target and target != actual):
            raise DigestMismatch(f"{prefix}: manifest body has digest {actual}")
        url = self._url(ref, "manifests", target)
        headers = {"Content-Type": manifest.media_type}
        async with self._send(ref, "PUT", url, prefix, push=True, headers=headers, data=body) as r:
            stored = r.headers.get("Docker-Content-Digest", "")
        if stored.startswith("sha256:") and stored != actual:
            raise DigestMismatch(f"{prefix}: registry stored digest {stored}")

    def _origin(self, ref: ImageReference) -> URL:
        scheme = "http" if ref.registry in self._insecure else "https"
        host = DOCKER_HUB_API if ref.registry == "docker.io" else ref.registry
        return URL(f"{scheme}://{host}")

    def _url(self, ref: ImageReference, *parts: str) -> URL:
        # Repository, tag and digest are validated, so nothing needs quoting.
        path = "/".join((ref.repository, *parts))
        return URL(f"{self._origin(ref)}/v2/{path}", encoded=True)

    @staticmethod
    def _with_digest(base: URL, location: str, digest: str, prefix: str) -> URL:
        # Keep a well-formed Location byte for byte: its query (often an opaque
        # upload state) must come back exactly as the registry sent it.
        plain = location.isascii() and not any(c.isspace() for c in location)
        try:
            upload = base.join(URL(location, encoded=plain))
        except ValueError as exc:
            raise RegistryError(f"{prefix}: bad upload Location {location!r}") from exc
        query = upload.raw_query_string
        extra = "digest=" + quote(digest, safe="")
        bare = str(upload.with_query(None).with_fragment(None))
        return URL(f"{bare}?{query}&{extra}" if query else f"{bare}?{extra}", encoded=True)

    @staticmethod
    def _check(ref: ImageReference, reference: str, digest_only: bool = False) -> None:
        # Checked before use: they become URL path segments unquoted.
        if (":" in reference or digest_only) and not _DIGEST.fullmatch(reference):
            raise RegistryError(f"{ref.name}: unsupported digest {reference!r} (want sha256:)")
        if ":" not in reference and not digest_only and not _TAG.fullmatch(reference):
            raise RegistryError(f"{ref.name}: invalid tag {reference!r}")

    @asynccontextmanager
    async def _send(
        self,
        ref: ImageReference,
        method: str,
        url: URL,
        prefix: str,
        *,
        push: bool = False,
        headers: dict[str, str] | None = None,
        data: Body | None = None,
        stream: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request with bearer auth (a 401 fetches a token and retries once),
        a 2xx response yielded, everything else raised as a RegistryError."""
        scope = f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
        timeout = self._stream_timeout if stream else self._timeout
        # A streamed body is gone after one attempt, so it cannot be retried.
        replayable = data is None or isinstance(data, bytes)
        try:
            for attempt in range(2):
                sent = dict(headers or {})
                token = self._tokens.get((ref.registry, scope))
                # Never hand our token to another host (an upload Location may be one).
                if token is not None and url.origin() == self._origin(ref):
                    sent["Authorization"] = f"Bearer {token}"
                async with self._session.request(
                    method, url, headers=sent, data=data, timeout=timeout
                ) as resp:
                    if resp.status == 401 and attempt == 0 and replayable:
                        token = await self._fetch_token(resp, prefix, scope)
                        self._tokens[(ref.registry, scope)] = token
                        continue
                    await _raise_for_status(resp, prefix)
                    yield resp
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _client_error(exc, prefix, f"registry {ref.registry}") from exc

    async def _fetch_token(self, resp: aiohttp.ClientResponse, prefix: str, scope: str) -> str:
        """An anonymous token for a 401's Bearer challenge."""
        challenges = _parse_challenges(resp.headers.getall("WWW-Authenticate", []))
        bearer = next((params for scheme, params in challenges if scheme == "bearer"), None)
        if bearer is None:
            schemes = ", ".join(scheme for scheme, _ in challenges) or "no"
            raise RegistryAuthError(f"{prefix}: needs {schemes} auth; credentials unsupported")
        try:
            realm = URL(bearer.get("realm", ""))
        except ValueError:
            realm = URL()  # rejected just below
        if realm.scheme not in ("http", "https") or not realm.host:
            raise RegistryAuthError(f"{prefix}: bad token realm {str(realm)!r}")
        params = [("service", bearer["service"])] if bearer.get("service") else []
        # Ask for what we need plus what the registry named, so one token covers
        # a push's HEAD, POST and PUT.
        scopes = [scope, *(s for s in bearer.get("scope", "").split() if s != scope)]
        params += [("scope", s) for s in scopes]
        try:
            async with self._session.get(realm, params=params, timeout=self._timeout) as answer:
                body = await _read_at_most(answer, MAX_SMALL_BODY)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _client_error(exc, prefix, f"token server {realm.host}") from exc
        if status != 200:
            raise RegistryAuthError(f"{prefix}: token server answered HTTP {status}")
        try:
            doc: Any = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{prefix}: token server sent no token")
        return token
