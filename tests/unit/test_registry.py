"""The registry client against a fake Distribution API server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, MultiDict

from runtime.reference import ImageReference, parse_reference
from runtime.registry import (
    DOCKER_MANIFEST,
    MANIFEST_MEDIA_TYPES,
    OCI_MANIFEST,
    DigestMismatch,
    ImageNotFound,
    Manifest,
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryUnreachable,
)

MANIFEST_PATH = re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)")
UPLOAD_PATH = re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)")
BLOB_PATH = re.compile(r"/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_body(media_type: str = OCI_MANIFEST) -> bytes:
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(b"{}")}
    doc = {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": []}
    return json.dumps(doc).encode()


@dataclass
class Seen:
    method: str
    path: str
    query: MultiDict[str]
    raw_query: str
    headers: CIMultiDict[str]


@dataclass
class FakeRegistry:
    """Just enough of the Distribution API, with knobs to misbehave."""

    port: int = 0
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    token: str | None = None  # when set, /v2/ wants "Bearer <token>"
    issued: str = "tok-1"  # what /token hands out
    challenge: str | None = None  # replaces the Bearer challenge
    tamper: bool = False  # serve altered bytes for blobs and manifests
    header_digest: str | None = None  # a lying Docker-Content-Digest
    content_type: str | None = None  # replaces the manifest's Content-Type
    release: asyncio.Event = field(default_factory=asyncio.Event)  # frees "slow" requests

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ref(self, text: str) -> ImageReference:
        return parse_reference(f"{self.address}/{text}")

    def hits(self, method: str, path_prefix: str = "/") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path_prefix)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        query, headers = MultiDict(request.query), CIMultiDict(request.headers)
        self.seen.append(Seen(request.method, request.path, query, request.query_string, headers))
        path = request.path
        if path == "/token":
            return web.json_response({"access_token": self.issued})
        if path.startswith("/cdn/"):
            return web.Response(body=self._blob(path.removeprefix("/cdn/")))
        name = path.removeprefix("/v2/").split("/blobs/")[0].split("/manifests/")[0]
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            realm = f"http://{self.address}/token"
            default = f'Bearer realm="{realm}",service="fake",scope="repository:{name}:pull"'
            challenge = {"WWW-Authenticate": self.challenge or default}
            return web.Response(status=401, headers=challenge)
        if name == "slow":
            await self.release.wait()
        if name == "broken":
            errors = [{"code": "UNKNOWN", "message": "disk on fire", "detail": None}]
            return web.json_response({"errors": errors}, status=500)
        if match := MANIFEST_PATH.fullmatch(path):
            return self._manifest(request, match["name"], match["ref"], body)
        if (match := UPLOAD_PATH.fullmatch(path)) and request.method == "POST":
            location = f"/v2/{match['name']}/blobs/uploads/u-1?_state=a%2Bb%3D%3D"
            return web.Response(status=202, headers={"Location": location})
        if (match := UPLOAD_PATH.fullmatch(path)) and request.method == "PUT":
            digest = request.query["digest"]
            if sha(body) != digest:
                return web.json_response({"errors": [{"code": "DIGEST_INVALID"}]}, status=400)
            self.blobs[digest] = body
            return web.Response(status=201, headers={"Docker-Content-Digest": digest})
        if match := BLOB_PATH.fullmatch(path):
            digest = match["digest"]
            if digest not in self.blobs:
                return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
            if request.method == "HEAD":
                return web.Response(headers={"Content-Length": str(len(self.blobs[digest]))})
            raise web.HTTPTemporaryRedirect(f"/cdn/{digest}")  # as registries do for storage
        return web.Response(status=405)

    def _blob(self, digest: str) -> bytes:
        data = self.blobs[digest]
        return bytes([data[0] ^ 1]) + data[1:] if self.tamper else data

    def _manifest(self, request: web.Request, name: str, ref: str, body: bytes) -> web.Response:
        if request.method == "PUT":
            self.manifests[(name, ref)] = (request.headers["Content-Type"], body)
            return web.Response(status=201, headers={"Docker-Content-Digest": sha(body)})
        if (name, ref) not in self.manifests:
            errors = [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]
            return web.json_response({"errors": errors}, status=404)
        media_type, stored = self.manifests[(name, ref)]
        served = stored + b" " if self.tamper else stored
        headers = {"Docker-Content-Digest": self.header_digest or sha(served)}
        return web.Response(
            body=served, headers=headers, content_type=self.content_type or media_type
        )


@pytest.fixture
async def fake() -> AsyncIterator[FakeRegistry]:
    registry = FakeRegistry()
    server = TestServer(web.Application(), host="127.0.0.1")
    server.app.router.add_route("*", "/{tail:.*}", registry.handle)
    await server.start_server()
    assert server.port is not None
    registry.port = server.port
    yield registry
    registry.release.set()
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(fake: FakeRegistry, session: aiohttp.ClientSession) -> RegistryClient:
    return RegistryClient(session, insecure_registries=frozenset({fake.address}), timeout=5.0)


async def read_all(chunks: AsyncIterator[bytes], into: list[bytes] | None = None) -> bytes:
    got = [] if into is None else into
    async for chunk in chunks:
        got.append(chunk)
    return b"".join(got)


async def pieces(data: bytes, count: int = 3) -> AsyncIterator[bytes]:
    step = max(1, len(data) // count)
    for start in range(0, len(data), step):
        await asyncio.sleep(0)
        yield data[start : start + step]


async def test_manifest_accepts_every_media_type(
    fake: FakeRegistry, client: RegistryClient
) -> None:
    body = manifest_body()
    fake.manifests[("team/app", "v1")] = (OCI_MANIFEST, body)
    manifest = await client.get_manifest(fake.ref("team/app:v1"))
    assert manifest == Manifest(OCI_MANIFEST, sha(body), body)
    (request,) = fake.hits("GET")
    assert request.path == "/v2/team/app/manifests/v1"
    accepted = {part.strip() for part in request.headers["Accept"].split(",")}
    assert accepted == set(MANIFEST_MEDIA_TYPES)
    assert len(MANIFEST_MEDIA_TYPES) == 4


async def test_manifest_by_digest(fake: FakeRegistry, client: RegistryClient) -> None:
    body = manifest_body(DOCKER_MANIFEST)
    fake.manifests[("app", sha(body))] = (DOCKER_MANIFEST, body)
    by_ref = await client.get_manifest(fake.ref(f"app@{sha(body)}"))
    explicit = await client.get_manifest(fake.ref("app:ignored"), sha(body))
    assert by_ref == explicit == Manifest(DOCKER_MANIFEST, sha(body), body)
    assert [s.path for s in fake.hits("GET")] == [f"/v2/app/manifests/{sha(body)}"] * 2


async def test_media_type_from_the_document(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.manifests[("app", "latest")] = (DOCKER_MANIFEST, manifest_body(DOCKER_MANIFEST))
    fake.content_type = "application/json"
    assert (await client.get_manifest(fake.ref("app"))).media_type == DOCKER_MANIFEST


async def test_manifest_digest_is_verified(fake: FakeRegistry, client: RegistryClient) -> None:
    body = manifest_body()
    fake.manifests[("app", sha(body))] = fake.manifests[("app", "v1")] = (OCI_MANIFEST, body)
    fake.header_digest = sha(b"something else")
    # By tag, only the registry's Docker-Content-Digest header can tell.
    with pytest.raises(DigestMismatch, match="header says"):
        await client.get_manifest(fake.ref("app:v1"))
    fake.header_digest, fake.tamper = None, True
    ref = fake.ref(f"app@{sha(body)}")
    with pytest.raises(DigestMismatch, match=re.escape(ref.name)):
        await client.get_manifest(ref)


async def test_blob_streams_through_the_redirect(
    fake: FakeRegistry, client: RegistryClient
) -> None:
    data = bytes(range(256)) * 12_000  # several chunks
    fake.blobs[sha(data)] = data
    chunks: list[bytes] = []
    assert await read_all(client.blob_chunks(fake.ref("app"), sha(data), len(data)), chunks) == data
    assert len(chunks) > 1
    assert [s.path for s in fake.hits("GET")] == [f"/v2/app/blobs/{sha(data)}", f"/cdn/{sha(data)}"]


async def test_corrupt_blob_fails_at_the_end(fake: FakeRegistry, client: RegistryClient) -> None:
    data = b"layer" * 1000
    fake.blobs[sha(data)] = data
    fake.tamper = True
    ref = fake.ref("app")
    chunks: list[bytes] = []
    with pytest.raises(DigestMismatch, match=re.escape(ref.name)):
        await read_all(client.blob_chunks(ref, sha(data), len(data)), chunks)
    # Every byte arrived first: the failure is the verdict on the whole stream.
    assert sum(map(len, chunks)) == len(data)


async def test_a_blob_of_the_wrong_size_fails(fake: FakeRegistry, client: RegistryClient) -> None:
    data = b"x" * 5000
    fake.blobs[sha(data)] = data
    for declared, why in [(10, "more than the 10 bytes"), (5001, "5000 bytes, not the 5001")]:
        with pytest.raises(DigestMismatch, match=why):
            await read_all(client.blob_chunks(fake.ref("app"), sha(data), declared))


async def test_missing_images_name_the_image(fake: FakeRegistry, client: RegistryClient) -> None:
    ref = fake.ref("team/none:v9")
    with pytest.raises(ImageNotFound) as info:
        await client.get_manifest(ref)
    assert ref.name in str(info.value)
    assert "MANIFEST_UNKNOWN" in str(info.value)
    with pytest.raises(ImageNotFound, match="BLOB_UNKNOWN"):
        await read_all(client.blob_chunks(ref, sha(b"nope")))


async def test_server_errors_carry_its_message(fake: FakeRegistry, client: RegistryClient) -> None:
    ref = fake.ref("broken")
    with pytest.raises(RegistryError) as info:
        await client.get_manifest(ref)
    assert type(info.value) is RegistryError
    assert ref.name in str(info.value)
    assert "500" in str(info.value) and "disk on fire" in str(info.value)


async def test_a_closed_port_is_unreachable(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    client = RegistryClient(session, insecure_registries=frozenset({address}), timeout=5.0)
    ref = parse_reference(f"{address}/app:v1")
    with pytest.raises(RegistryUnreachable, match=re.escape(ref.name)):
        await client.get_manifest(ref)
    with pytest.raises(RegistryUnreachable):
        await read_all(client.blob_chunks(ref, sha(b"")))


async def test_silence_times_out(fake: FakeRegistry, session: aiohttp.ClientSession) -> None:
    client = RegistryClient(session, insecure_registries=frozenset({fake.address}), timeout=0.2)
    with pytest.raises(RegistryUnreachable, match="timed out"):
        await client.get_manifest(fake.ref("slow"))


async def test_https_unless_insecure(fake: FakeRegistry, session: aiohttp.ClientSession) -> None:
    client = RegistryClient(session, timeout=5.0)
    # A TLS handshake against the plain-HTTP fake fails inside our error family.
    with pytest.raises(RegistryError):
        await client.get_manifest(fake.ref("app"))
    assert fake.seen == []


async def test_bearer_token_flow(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.manifests[("team/app", "latest")] = (OCI_MANIFEST, manifest_body())
    fake.token = fake.issued = "tok-1"
    await client.get_manifest(fake.ref("team/app"))
    await client.get_manifest(fake.ref("team/app"))
    (token_request,) = fake.hits("GET", "/token")
    assert token_request.query["service"] == "fake"
    assert token_request.query.getall("scope") == ["repository:team/app:pull"]
    authorizations = [s.headers.get("Authorization") for s in fake.hits("GET", "/v2/")]
    assert authorizations == [None, "Bearer tok-1", "Bearer tok-1"]
    # An expired token earns a 401, which fetches a new one.
    fake.token = fake.issued = "tok-2"
    await client.get_manifest(fake.ref("team/app"))
    assert len(fake.hits("GET", "/token")) == 2
    assert fake.hits("GET", "/v2/")[-1].headers["Authorization"] == "Bearer tok-2"


async def test_refused_token_is_auth_error(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.token, fake.issued = "right", "wrong"
    ref = fake.ref("app")
    with pytest.raises(RegistryAuthError, match=re.escape(ref.name)):
        await client.get_manifest(ref)
    assert len(fake.hits("GET", "/v2/")) == 2  # the original and one retry


async def test_basic_auth_is_not_attempted(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.token, fake.challenge = "any", 'Basic realm="fake"'
    with pytest.raises(RegistryAuthError, match="basic"):
        await client.get_manifest(fake.ref("app"))
    assert fake.hits("GET", "/token") == []


async def test_bearer_after_basic_in_one_header(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.manifests[("app", "latest")] = (OCI_MANIFEST, manifest_body())
    fake.token = fake.issued = "tok-x"
    fake.challenge = (
        f'Basic realm="b", Bearer realm="http://{fake.address}/token?x=1",'
        'service="svc \\"q\\"",error="invalid_token"'
    )
    await client.get_manifest(fake.ref("app"))
    (token_request,) = fake.hits("GET", "/token")
    assert token_request.query["x"] == "1"
    assert token_request.query["service"] == 'svc "q"'


async def test_push_skips_a_present_blob(fake: FakeRegistry, client: RegistryClient) -> None:
    data = b"present"
    fake.blobs[sha(data)] = data
    assert await client.has_blob(fake.ref("app"), sha(data))
    await client.push_blob(fake.ref("app"), sha(data), len(data), data)
    assert [s.method for s in fake.seen] == ["HEAD", "HEAD"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_push_uploads(fake: FakeRegistry, client: RegistryClient, streamed: bool) -> None:
    data = b"new layer" * 5000
    ref = fake.ref("team/app:v2")
    assert not await client.has_blob(ref, sha(data))
    await client.push_blob(ref, sha(data), len(data), pieces(data) if streamed else data)
    assert fake.blobs[sha(data)] == data
    head, post, put = fake.seen[1:]
    assert (head.method, head.path) == ("HEAD", f"/v2/team/app/blobs/{sha(data)}")
    assert (post.method, post.path) == ("POST", "/v2/team/app/blobs/uploads/")
    assert (put.method, put.path) == ("PUT", "/v2/team/app/blobs/uploads/u-1")
    # The Location's own query came back untouched, with the digest added.
    assert put.raw_query.startswith("_state=a%2Bb%3D%3D&")
    assert put.query["digest"] == sha(data)
    assert put.headers["Content-Length"] == str(len(data))
    assert "Transfer-Encoding" not in put.headers

    body = manifest_body()
    await client.push_manifest(ref, Manifest(OCI_MANIFEST, sha(body), body))
    await client.push_manifest(ref, Manifest(OCI_MANIFEST, sha(body), body), tag="stable")
    assert fake.manifests[("team/app", "v2")] == (OCI_MANIFEST, body)
    assert fake.manifests[("team/app", "stable")] == (OCI_MANIFEST, body)
    assert {s.headers["Content-Type"] for s in fake.hits("PUT", "/v2/team/app/manifests/")} == {
        OCI_MANIFEST
    }


@pytest.mark.parametrize("streamed", [False, True])
async def test_push_checks_data(fake: FakeRegistry, client: RegistryClient, streamed: bool) -> None:
    data, claimed = b"actual bytes", sha(b"claimed bytes")
    ref = fake.ref("app")
    with pytest.raises(DigestMismatch, match=re.escape(ref.name)):
        await client.push_blob(ref, claimed, len(data), pieces(data) if streamed else data)
    assert fake.blobs == {}


async def test_push_scope_token(fake: FakeRegistry, client: RegistryClient) -> None:
    fake.token = fake.issued = "tok-push"
    data = b"blob"
    await client.push_blob(fake.ref("app"), sha(data), len(data), pieces(data))
    scopes = fake.hits("GET", "/token")[0].query.getall("scope")
    assert "repository:app:pull,push" in scopes
    assert fake.blobs == {sha(data): data}
    assert fake.hits("PUT")[0].headers["Authorization"] == "Bearer tok-push"
