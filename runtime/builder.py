"""`docker build` without Docker: a Dockerfile and a build context become an
OCI image in this host's containerd.

Each COPY, ADD and RUN makes one layer (runtime.build_layers): an active
snapshot on top of the chain so far, changed by copying into it or by running
the command in it, diffed by containerd into a gzip layer, committed under its
chain ID. The other instructions change only the config (runtime.build_config).
Every step first asks the build cache (runtime.build_cache) with a key made of
the state before it and the step with its inputs; a hit reuses the step's layer
and config. At the end the image goes into the content store, tagged
(runtime.build_image).
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from containerd.services.leases.v1 import leases_pb2

from runtime import build_config as cfg
from runtime import content
from runtime.build_cache import BuildCache, CachedLayer, CacheEntry, step_key
from runtime.build_files import (
    ContextError,
    DockerIgnore,
    copy_sources,
    digest_sources,
    ownership,
    select_sources,
)
from runtime.build_image import ImageState, unpack_layers, write_image
from runtime.build_layers import (
    BUILD_DIR,
    ActiveLayer,
    RunProcess,
    remove_orphans,
    run_in_snapshot,
)
from runtime.containerd_client import SNAPSHOTTER, ContainerdError
from runtime.dockerfile import parse_dockerfile
from runtime.dockerfile_instructions import (
    Arg,
    BuildError,
    Copy,
    From,
    Instruction,
    Run,
)
from runtime.driver import ContainerdRuntime
from runtime.images import ImageStore
from runtime.oci_spec import SpecError
from runtime.reference import InvalidReference, parse_reference
from runtime.registry import RegistryError
from runtime.unpack import ImageError, diff_ids

# The empty tar (two zero blocks): a step that changed no file makes no layer.
EMPTY_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
# The build's lease keeps its unfinished layers from the GC; if the builder
# dies, containerd collects them once it expires. It bounds a build's length.
LEASE_MINUTES = 24 * 60
CACHE_FILE = "build-cache.json"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    reference: str  # the full name the image is stored under
    manifest_digest: str
    image_id: str  # the config digest
    cached_steps: tuple[int, ...]  # numbers (from 1) of the steps the cache answered


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read_dockerfile(context: Path, dockerfile: str) -> str:
    path = (context / dockerfile).resolve()
    if not path.is_relative_to(context.resolve()) or not path.is_file():
        raise BuildError(f"Cannot locate specified Dockerfile: {dockerfile}")
    return path.read_text()


async def build(
    runtime: ContainerdRuntime,
    context: Path,
    *,
    tag: str,
    dockerfile: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    no_cache: bool = False,
) -> BuildResult:
    """Build `context` (a directory) with its `dockerfile` (a path inside it)
    and tag the image `tag`; progress gets Docker's classic lines, RUN output
    included. BuildError (with `.output` for a failed RUN) if it fails."""
    if runtime.images is None:
        raise BuildError("the runtime is not open")
    try:
        ref = parse_reference(tag)
    except InvalidReference as exc:
        raise BuildError(str(exc)) from None
    if ref.digest is not None:
        raise BuildError(f"invalid tag {tag!r}: a build's name cannot have a digest")
    instructions = parse_dockerfile(_read_dockerfile(context, dockerfile), dockerfile)
    try:
        ignore = DockerIgnore.load(context)
    except ContextError as exc:
        raise BuildError(str(exc)) from None
    builder = _Builder(runtime, runtime.images, context, ignore, build_args or {}, no_cache)
    if progress is not None:
        builder.say = progress
    return await builder.run(instructions, ref.name)


class _Builder:
    def __init__(
        self,
        runtime: ContainerdRuntime,
        store: ImageStore,
        context: Path,
        ignore: DockerIgnore,
        build_args: Mapping[str, str],
        no_cache: bool,
    ) -> None:
        self.runtime = runtime
        self.client = runtime.client
        self.store = store
        self.context = context
        self.ignore = ignore
        self.args = cfg.BuildArgs(build_args)
        self.no_cache = no_cache
        self.cache = BuildCache(runtime.config.state_dir / CACHE_FILE)
        self.lease = ""
        self.cached_steps: list[int] = []
        self.say: Progress = lambda line: None

    async def run(self, instructions: list[Instruction], name: str) -> BuildResult:
        self.lease = await content.create_lease(self.client, minutes=LEASE_MINUTES)
        try:
            await remove_orphans(self.client, self.runtime.config.state_dir / BUILD_DIR)
            state: ImageState | None = None
            for number, instruction in enumerate(instructions, 1):
                self.say(f"Step {number}/{len(instructions)} : {instruction.text}")
                try:
                    state, cached = await self._dispatch(state, instruction)
                except (ContainerdError, ImageError) as exc:
                    # containerd failed under us: still name the step it failed.
                    raise instruction.error(str(exc)) from exc
                if cached:
                    self.cached_steps.append(number)
                if state is not None:
                    self.say(f" ---> {_short(state.id)}")
            assert state is not None  # parse_dockerfile insists on a FROM
            if unused := self.args.unused():
                self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
            try:
                manifest_digest = await write_image(self.client, state, name, self.lease)
            except (ContainerdError, ImageError) as exc:
                raise BuildError(f"writing image {name}: {exc}") from exc
        finally:
            self.cache.save()
            await content.delete_lease(self.client, self.lease)
        self.say(f"Successfully built {_short(state.id)}")
        self.say(f"Successfully tagged {name}")
        return BuildResult(name, manifest_digest, state.id, tuple(self.cached_steps))

    async def _dispatch(
        self, state: ImageState | None, instruction: Instruction
    ) -> tuple[ImageState | None, bool]:
        if isinstance(instruction, Arg):
            if state is None:  # before FROM: only earlier global ARGs are known
                self.args.declare(instruction.expanded(self.args.global_values), in_stage=False)
            else:
                env = self.args.expansion_env(state.config)
                self.args.declare(instruction.expanded(env), in_stage=True)
            return state, False
        if isinstance(instruction, From):
            return await self._from(instruction.expanded(self.args.global_values)), False
        assert state is not None  # parse_dockerfile puts FROM first
        expanded = instruction.expanded(self.args.expansion_env(state.config))
        if isinstance(expanded, Copy):
            return await self._copy(state, expanded)
        if isinstance(expanded, Run):
            return await self._run(state, expanded)
        return self._metadata(state, expanded)

    async def _from(self, instruction: From) -> ImageState:
        image = instruction.image
        if image.lower() == "scratch":
            return ImageState(cfg.scratch_config(), ())
        try:
            try:
                info = await self.store.inspect(image)
            except ImageError:
                self.say(f"Pulling {image}")
                info = await self.store.pull(image)
            ids = diff_ids(info.config, info.name)
            if len(ids) != len(info.layers):
                raise ImageError(f"{len(info.layers)} layers but {len(ids)} diff_ids")
        except (ImageError, RegistryError, InvalidReference, ContainerdError) as exc:
            raise instruction.error(f"FROM {image}: {exc}") from None
        layers = tuple(
            CachedLayer(
                layer.digest,
                layer.size,
                cfg.OCI_LAYER_TYPES.get(layer.media_type, layer.media_type),
                d,
            )
            for layer, d in zip(info.layers, ids, strict=True)
        )
        return ImageState(cfg.base_config(info.config), layers)

    def _metadata(self, state: ImageState, instruction: Instruction) -> tuple[ImageState, bool]:
        key = step_key(state.id, cfg.step_description(instruction))
        entry = None if self.no_cache else self.cache.get(key)
        if entry is not None and entry.layer is None:
            self.say(" ---> Using cache")
            return ImageState(entry.config, state.layers), True
        config = cfg.apply_metadata(state.config, instruction)
        config = cfg.add_history(config, cfg.created_by(instruction), _now(), None)
        self.cache.put(key, CacheEntry(config, None))
        return ImageState(config, state.layers), False

    async def _copy(self, state: ImageState, instruction: Copy) -> tuple[ImageState, bool]:
        keyword = instruction.keyword
        try:
            sources = await asyncio.to_thread(
                select_sources,
                self.context,
                list(instruction.sources),
                self.ignore,
                instruction.add,
            )
            inputs = await asyncio.to_thread(digest_sources, sources)
        except (ContextError, OSError) as exc:
            raise instruction.error(f"{keyword} failed: {exc}") from None
        dest = instruction.dest
        dest_is_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        if len(sources) > 1 and not dest_is_dir:
            raise instruction.error(
                f"When using {keyword} with more than one source file, "
                "the destination must be a directory and end with a /"
            )
        workdir = (state.config.get("config") or {}).get("WorkingDir") or "/"
        target = posixpath.normpath(posixpath.join("/", workdir, dest))
        mode = None
        if instruction.chmod:
            try:
                mode = int(instruction.chmod, 8)
            except ValueError:
                raise instruction.error(f"invalid --chmod={instruction.chmod}") from None

        async def change(layer: ActiveLayer) -> None:
            async with layer.mounted() as root:
                try:
                    owner = ownership(root, instruction.chown, mode)
                    await asyncio.to_thread(copy_sources, root, sources, target, dest_is_dir, owner)
                except (ContextError, OSError, SpecError) as exc:
                    raise instruction.error(f"{keyword} failed: {exc}") from None

        key = step_key(state.id, cfg.step_description(instruction), inputs)
        created_by = f"{keyword} {' '.join(instruction.sources)} {target} # {_short(inputs)}"
        return await self._layer_step(state, key, created_by, change)

    async def _run(self, state: ImageState, instruction: Run) -> tuple[ImageState, bool]:
        inner = state.config.get("config") or {}
        argv = instruction.argv(cfg.shell(state.config))
        args = self.args.run_env(state.config)
        created_by = " ".join(argv)
        if args:  # as Docker records it: the build args a RUN saw
            created_by = f"|{len(args)} {' '.join(args)} {created_by}"

        async def change(layer: ActiveLayer) -> None:
            process = RunProcess(
                argv,
                [*(inner.get("Env") or []), *args],
                str(inner.get("User") or ""),
                str(inner.get("WorkingDir") or "/"),
            )
            cid = f"shoal-build-{secrets.token_hex(6)}"
            self.say(f" ---> Running in {cid[-12:]}")
            try:
                code, output = await run_in_snapshot(self.runtime, layer, cid, process, self.say)
            except SpecError as exc:
                raise instruction.error(str(exc)) from None
            if code != 0:
                raise BuildError(
                    f"The command '{' '.join(argv)}' returned a non-zero code: {code}", output
                )

        key = step_key(state.id, json.dumps(["RUN", argv]), json.dumps(args))
        return await self._layer_step(state, key, created_by, change)

    async def _layer_step(
        self,
        state: ImageState,
        key: str,
        created_by: str,
        change: Callable[[ActiveLayer], Awaitable[None]],
    ) -> tuple[ImageState, bool]:
        """A step that changes files: from the cache, or done in a snapshot."""
        entry = None if self.no_cache else self.cache.get(key)
        if entry is not None:
            cached = ImageState(
                entry.config, state.layers + ((entry.layer,) if entry.layer else ())
            )
            if await self._usable(entry, cached.chain, key):
                self.say(" ---> Using cache")
                return cached, True
        await unpack_layers(self.client, state, self.lease)
        layer: CachedLayer | None = None
        async with ActiveLayer(self.client, state.chain, self.lease) as active:
            await change(active)
            new = await active.diff()
            if new.diff_id != EMPTY_LAYER:
                layer = CachedLayer(
                    new.descriptor.digest,
                    new.descriptor.size,
                    new.descriptor.media_type,
                    new.diff_id,
                )
                await active.commit(ImageState(state.config, (*state.layers, layer)).chain)
        config = cfg.add_history(state.config, created_by, _now(), layer.diff_id if layer else None)
        self.cache.put(key, CacheEntry(config, layer))
        return ImageState(config, state.layers + ((layer,) if layer else ())), False

    async def _usable(self, entry: CacheEntry, chain: str, key: str) -> bool:
        """An entry's layer must still be in the content store. It joins the
        lease, with its snapshot if there is one, so the GC cannot take them
        before the new image holds them."""
        if entry.layer is None:
            return True
        # Leased first, checked second: a blob the GC had not taken by then
        # is safe from it.
        for resource in (
            leases_pb2.Resource(id=entry.layer.digest, type="content"),
            leases_pb2.Resource(id=chain, type=f"snapshots/{SNAPSHOTTER}"),
        ):
            request = leases_pb2.AddResourceRequest(id=self.lease, resource=resource)
            await self.client.call(self.client.leases.AddResource, request, "build: lease")
        if await content.has_blob(self.client, entry.layer.digest):
            return True
        self.cache.forget(key)
        return False
