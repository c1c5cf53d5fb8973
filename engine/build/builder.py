"""Builder: the daemon's image builder (dockerd's classic builder protocol).

    prepare(options, body)   context tar → <data_root>/tmp/build-<id>/context (safe extraction,
                             .dockerignore applied), Dockerfile parsed and planned; errors here
                             are the request's (400 with the Dockerfile's line)
    run(prepared, output)    the needed stages in order, each step cached or executed; tags
    prune / usage            the build cache for /build/prune and /system/df

A build owns one scratch directory; it, every workspace mount and every intermediate
container go away however the build ends (an AsyncExitStack closed under a shield)."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from typing import Protocol

import attrs
import trio

from engine.buildcontext import DockerIgnore
from engine.containers import HostConfig
from engine.containers.model import Status
from engine.containers.hub import STDERR, STDOUT
from engine.errors import EngineError, InvalidParameter, NotFound
from engine.images import Deleted, Progress, download, parse_reference

from . import context as ctx
from .cache import BuildCache, CacheUsage
from .executor import PREDEFINED_ARGS, StageRunner, StepFailed
from .layers import Workspace, commit_upper, drop_runtime_artifacts
from .parser import ParseError, parse, parse_line
from .shell import ShellLex
from .stages import Plan, plan as make_plan


# Marks a RUN step's container: one left by a daemon that died mid-build is removed at start.
BUILD_LABEL = "io.pyengine.build.intermediate"

# A context up to this size stays in memory and is indexed/hashed without a thread hop.
_INLINE_BYTES = 4 << 20


@attrs.define
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = attrs.Factory(list)
    buildargs: dict[str, str | None] = attrs.Factory(dict)
    target: str | None = None
    labels: dict[str, str] = attrs.Factory(dict)
    nocache: bool = False
    pull: bool = False
    rm: bool = True
    forcerm: bool = False
    cachefrom: list[str] = attrs.Factory(list)
    #: RUN containers' network, extra hosts, /dev/shm size, resource limits, cgroup parent, ulimits
    run_host_config: HostConfig = attrs.Factory(HostConfig)
    quiet: bool = False
    platform: str = ""


class Output(Protocol):
    """Where a build reports (engine.api writes Docker's build stream from it)."""

    async def stream(self, text: str) -> None:
        """Build output: step headers, RUN's output, results."""

    async def built(self, image_id: str) -> None:
        """The build's image exists (before "Successfully built" and the tags)."""

    async def done(self, image_id: str) -> None:
        """The build succeeded: nothing more comes."""


def _go_arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


class Build:
    """One build: its scratch dir, plan, options and the results of finished stages."""

    def __init__(self, builder: "Builder", options: BuildOptions, workdir: str):
        self.builder = builder
        self.options = options
        self.images = builder.images
        self.containers = builder.containers
        self.cache = builder.cache
        self.workdir = workdir
        self.context: ctx.Context | None = None
        self.context_in_memory = False
        self.tmp_dir = os.path.join(workdir, "tmp")
        self.plan: Plan | None = None
        self.output: Output | None = None
        self.architecture = _go_arch()
        self.meta_values: dict[str, str] = {}
        self.used_args: set[str] = set()
        self.results: dict[int, object] = {}
        self.cache_sources: list = []
        # With --cache-from, a local cache hit counts only if it is one of the sources or an
        # ancestor of one (dockerd's rule); None = no --cache-from, every local hit counts.
        self.cache_allowed: set[str] | None = None

    # -------------------------------------------------------------- for the stage runner

    def expand_meta(self, text: str) -> str:
        return ShellLex(self.plan.escape).word(text, self.meta_values)

    def stage_result(self, ref: str, before: int):
        earlier = Plan(self.plan.meta_args, self.plan.stages[:before], self.plan.escape)
        stage = earlier.stage_by_ref(ref)
        if stage is None:
            return None
        if stage.index not in self.results:
            raise StepFailed(f"stage {ref} was not built")
        return self.results[stage.index]

    async def base_image(self, name: str):
        store = self.images
        if not self.options.pull:
            try:
                return store.resolve(name)
            except NotFound:
                pass
        try:
            dist = store.distribution
            pull_plan = await dist.resolve_pull(name, None)

            async def progress(event) -> None:
                if isinstance(event, Progress) and event.current is None:  # no byte counts
                    await self.output.stream((f"{event.id}: {event.status}" if event.id else event.status) + "\n")

            return await dist.pull(pull_plan, progress)
        except EngineError as exc:
            if self.options.pull:
                try:
                    return store.resolve(name)
                except NotFound:
                    pass
            raise StepFailed(exc.message) from None

    async def context_on_disk(self) -> str:
        """The context extracted (the first COPY/ADD that misses the cache does it)."""
        return await trio.to_thread.run_sync(self.context.extract, os.path.join(self.workdir, "context"))

    def workspace(self, image) -> "contextlib.AbstractAsyncContextManager[Workspace]":
        return Workspace(self.images, image, os.path.join(self.tmp_dir, "ws-" + os.urandom(6).hex()))

    async def download(self, url: str) -> tuple[str, str]:
        """ADD <url>: fetch into the scratch dir (the file takes the Last-Modified time it
        was served with). Returns (host path, file name)."""
        name = os.path.basename(url.split("?", 1)[0].split("#", 1)[0].rstrip("/")) or "download"
        directory = os.path.join(self.tmp_dir, "dl-" + os.urandom(6).hex())
        path = os.path.join(directory, name)
        os.makedirs(directory, exist_ok=True)
        try:
            modified = await download(url, path)
        except EngineError as exc:
            raise StepFailed(f"ADD failed: {exc.message}") from None
        os.chmod(path, 0o600)
        if modified is not None:
            os.utime(path, (modified, modified))
        return path, name

    async def run_container(self, runner: StageRunner, cmd: list[str], args_env: list[str],
                            config: dict, container_config: dict):
        """RUN: a real container on the current image; its upper dir becomes the layer.
        Returns (image, diff id or None). The container is removed unless --rm=false; one
        whose command failed (or would not start) stays, as dockerd's classic builder leaves
        it for a look, unless --force-rm."""
        from engine.containers import ContainerConfig, HealthConfig

        options = self.options
        state = runner.state
        spec = ContainerConfig(
            image=state.image.id, cmd=tuple(cmd), entrypoint=("",),
            env=tuple(config.get("Env") or ()) + tuple(args_env),
            working_dir=config.get("WorkingDir") or "", user=config.get("User") or "",
            attach_stdout=True, attach_stderr=True, healthcheck=HealthConfig(test=("NONE",)),
            labels={BUILD_LABEL: "1"},
        )
        try:
            container, _ = await self.containers.create(spec, options.run_host_config)
        except EngineError as exc:
            raise StepFailed(exc.message) from None
        await self.output.stream(f" ---> Running in {container.short_id}\n")
        keep = False
        try:
            channel = self.containers.subscribe_output(container)
            decoders = {STDERR: codecs.getincrementaldecoder("utf-8")(errors="replace"),
                        STDOUT: codecs.getincrementaldecoder("utf-8")(errors="replace")}
            async with channel:
                try:
                    await self.containers.start(container.id)
                except EngineError as exc:
                    raise StepFailed(exc.message, 127 if "not found" in exc.message else 126) from None
                async for stream_id, data in channel:
                    text = decoders.get(stream_id, decoders[STDOUT]).decode(data)
                    if stream_id == STDERR and text:
                        text = f"\x1b[91m{text}\x1b[0m"  # dockerd shows RUN's stderr in red
                    await self.output.stream(text)
            await self.output.stream(decoders[STDOUT].decode(b"", final=True))
            result = await self.containers.wait(container.id)
            code = result.exit_code
            if code != 0:
                raise StepFailed(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code)

            def commit():
                drop_runtime_artifacts(self.images, state.image, container.upper_dir)
                diff_id = commit_upper(self.images, state.image, container.upper_dir, self.tmp_dir)
                return runner.make_image(config, container_config, diff_id, container.id), diff_id

            image, diff_id = await trio.to_thread.run_sync(commit)
            keep = not options.rm and not options.forcerm
            return image, diff_id
        except StepFailed:
            keep = not options.forcerm
            raise
        finally:
            if not keep:
                with trio.CancelScope(shield=True):
                    try:
                        await self.containers.remove(container.id, force=True, volumes=True)
                    except NotFound:
                        pass
                await self.output.stream(f"Removing intermediate container {container.short_id}\n")


@attrs.define
class Prepared:
    build: Build
    stack: contextlib.AsyncExitStack

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self.stack.aclose()


@attrs.frozen
class CachePruneReport:
    deleted: tuple[str, ...] = ()  # cache entry ids (short keys)
    space_reclaimed: int = 0  # bytes of the intermediate images' layers deleted with them


class Builder:
    def __init__(self, config, images, containers):
        self.config = config
        self.images = images
        self.containers = containers
        self.root = os.path.join(config.data_root, "builder")
        self.cache = BuildCache(os.path.join(self.root, "cache"), images)
        self.scratch = os.path.join(config.data_root, "tmp")

    async def recover(self) -> None:
        """At daemon start: remove RUN containers of builds a dead daemon left behind (still
        created or running). Exited ones stay: a failed step's, or a step's kept by --rm=false."""
        for container in self.containers.all():
            if container.config.labels.get(BUILD_LABEL) and container.state.status is not Status.EXITED:
                try:
                    await self.containers.remove(container.id, force=True, volumes=True)
                except EngineError:
                    pass

    async def remote_context(self, url: str):
        """`remote=<url>`: the context (a tar, or a Dockerfile alone) downloaded by the
        daemon, as chunks for prepare(). Git repositories are not fetched."""
        if not re.match(r"^https?://", url) or re.search(r"\.git($|#)", url) or url.startswith("git@"):
            raise InvalidParameter(f"unsupported remote context {url!r}: only an http(s) URL of a tar "
                                   "archive or a Dockerfile is fetched (no git)")
        os.makedirs(self.scratch, exist_ok=True)
        path = os.path.join(self.scratch, "remote-" + os.urandom(6).hex())
        try:
            try:
                await download(url, path)
            except EngineError as exc:
                raise InvalidParameter(f"error downloading remote context {url}: {exc.message}") from None
            async with await trio.open_file(path, "rb") as f:
                while chunk := await f.read(1 << 20):
                    yield chunk
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # -------------------------------------------------------------- prepare

    async def prepare(self, options: BuildOptions, body) -> Prepared:
        """Receive the context and plan the build; raises the request's errors."""
        _validate(options)
        # The scratch dir is made only when something needs disk (an extracted context, a
        # workspace, a layer tar): a fully cached build writes nothing.
        workdir = os.path.join(self.scratch, "build-" + os.urandom(8).hex())
        stack = contextlib.AsyncExitStack()

        async def remove_workdir() -> None:
            if os.path.lexists(workdir):
                await trio.to_thread.run_sync(shutil.rmtree, workdir, True)

        stack.push_async_callback(remove_workdir)
        build = Build(self, options, workdir)
        try:
            # Small contexts stay in memory; a large one is spooled to the scratch dir.
            os.makedirs(self.scratch, exist_ok=True)
            spool = tempfile.SpooledTemporaryFile(max_size=32 << 20, dir=self.scratch)
            stack.callback(spool.close)
            received = 0
            async for chunk in body:
                received += len(chunk)
                if received > (32 << 20):  # on disk by now: write from a thread
                    await trio.to_thread.run_sync(spool.write, chunk)
                else:
                    spool.write(chunk)
            if received <= _INLINE_BYTES:
                text = self._unpack(build, spool)  # in memory: CPU work only
            else:
                text = await trio.to_thread.run_sync(self._unpack, build, spool)
            build.context_in_memory = received <= _INLINE_BYTES
            build.plan = make_plan(parse(text))
            for name in options.tags:
                parse_reference(name)
            build.plan.target_stage(options.target)
        except BaseException:
            await Prepared(build, stack).aclose()
            raise
        return Prepared(build, stack)

    def _unpack(self, build: Build, spool) -> str:
        """Index the context; returns the Dockerfile's text. A body that is not a tar is
        the Dockerfile itself (`docker build - < Dockerfile`)."""
        size = spool.tell()
        try:
            build.context = ctx.Context.load(spool)
        except tarfile.ReadError as exc:
            if size == 0:
                raise InvalidParameter("the build context is empty") from None
            spool.seek(0)
            if ctx.is_compressed(spool.read(6)):
                raise InvalidParameter(f"unable to read the build context: {exc}") from None
            spool.seek(0)
            build.context = ctx.Context(spool)
            return spool.read().decode("utf-8", errors="replace")
        context = build.context
        name = build.options.dockerfile or "Dockerfile"
        path = context.resolve(name)
        if not context.is_file(path) and name == "Dockerfile":
            path = context.resolve("dockerfile")
        if not context.is_file(path):
            raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")
        text = context.read(path).decode("utf-8", errors="replace")
        ignore_path = context.resolve(".dockerignore")
        if context.is_file(ignore_path):
            try:
                ignore = DockerIgnore.from_text(context.read(ignore_path))
            except (ValueError, re.error) as exc:
                raise InvalidParameter(f"invalid .dockerignore: {exc}") from None
            context.apply_ignore(ignore)
        return text

    # -------------------------------------------------------------- run

    async def run(self, prepared: Prepared, output: Output) -> str:
        build = prepared.build
        build.output = output
        options = build.options
        plan = build.plan
        try:
            for w in plan.warnings:
                await output.stream(w + "\n")
            self._meta_args(build)
            for ref in options.cachefrom:
                try:
                    build.cache_sources.append(self.images.resolve(ref))
                except (NotFound, InvalidParameter):
                    pass  # as dockerd: an unknown cache source is skipped
            if options.cachefrom:
                build.cache_allowed = self._ancestry(build.cache_sources)
            target = plan.target_stage(options.target)
            stages = plan.needed(target)
            extra = []
            if options.labels:
                words = " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(options.labels.items()))
                extra.append(parse_line("LABEL " + words, target.line, plan.escape))
            total = len(plan.meta_args) + sum(1 + len(s.nodes) for s in stages) + len(extra)
            step = 0
            for node in plan.meta_args:  # dockerd shows the ARGs before the first FROM as steps
                step += 1
                await output.stream(f"Step {step}/{total} : {node.original}\n")
            for stage in stages:
                runner = StageRunner(build, stage)
                step += 1
                await output.stream(f"Step {step}/{total} : {stage.from_node.original}\n")
                await runner.begin()
                for node in stage.nodes + (extra if stage is target else []):
                    step += 1
                    await output.stream(f"Step {step}/{total} : {node.original}\n")
                    try:
                        await runner.dispatch(node)
                    except ParseError as exc:
                        raise StepFailed(exc.message) from None
                if runner.state.image is None:
                    raise StepFailed("No image was generated. Is your Dockerfile empty?")
                build.results[stage.index] = runner.state.image
            image = build.results[target.index]
            others = [r.id for i, r in build.results.items() if i != target.index]
            if others:
                await trio.to_thread.run_sync(self.images.record_build_stages, image.id, others)
            unused = sorted(k for k in options.buildargs if k not in build.used_args and k not in PREDEFINED_ARGS)
            if unused:
                await output.stream(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
            await output.built(image.id)
            await output.stream(f"Successfully built {image.short_id}\n")
            for tag in options.tags:
                if _points_at(self.images, tag, image.id):
                    familiar = parse_reference(tag).familiar()  # a rebuild: nothing to write
                else:
                    familiar = await trio.to_thread.run_sync(self.images.tag, image.id, tag)
                self.containers.events.publish("image", "tag", image.id, {**self.images.labels(image.id),
                                                                           "name": familiar})
                await output.stream(f"Successfully tagged {familiar}\n")
            await output.done(image.id)
            return image.id
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.cache.flush)
            await prepared.aclose()

    def _meta_args(self, build: Build) -> None:
        lex = ShellLex(build.plan.escape)
        for node in build.plan.meta_args:
            for item in node.args:
                name, eq, default = item.partition("=")
                value = build.options.buildargs.get(name)
                if value is None:
                    value = lex.word(default, build.meta_values) if eq else None
                if value is not None:
                    build.meta_values[name] = value
                build.used_args.add(name)

    # -------------------------------------------------------------- cache: df / prune

    def _ancestry(self, images) -> set[str]:
        by_id = {i.id: i for i in self.images.list()}
        out: set[str] = set()
        for image in images:
            current = image
            while current is not None and current.id not in out:
                out.add(current.id)
                current = by_id.get(current.parent)
        return out

    def _tagged_ancestry(self) -> set[str]:
        return self._ancestry([i for i in self.images.list() if i.repo_tags])

    def usage(self) -> list[CacheUsage]:
        return self.cache.usage(self._tagged_ancestry())

    async def prune(self, *, all_: bool = False, keep_storage: int = 0, until_ns: int | None = None) -> CachePruneReport:
        """Forget cache entries, then delete the intermediate images only they held (untagged,
        no children, no container)."""

        def work() -> CachePruneReport:
            before = {r.key[:25]: r.image for r in self.cache.records()}
            deleted, _ = self.cache.prune(all_=all_, keep_storage=keep_storage, until_ns=until_ns,
                                          tagged_ancestry=self._tagged_ancestry())
            still = {r.image for r in self.cache.records()}
            candidates = {before[k] for k in deleted} - still
            reclaimed = 0
            changed = True
            while changed:
                changed = False
                images = self.images.list()
                parents = {i.parent for i in images if i.parent}
                for image in images:
                    if image.id not in candidates or image.repo_tags or image.id in parents:
                        continue
                    if self.containers.image_in_use(image.id):
                        continue
                    sizes = {c: int(self.images.layer_meta(c).get("size", 0)) for c in image.chain_ids}
                    try:
                        result = self.images.remove(image.id, force=False, in_use=self.containers.image_in_use)
                    except EngineError:
                        continue
                    reclaimed += sum(sizes.get(r.id, 0) for r in result if isinstance(r, Deleted))
                    candidates.discard(image.id)
                    if image.parent:
                        candidates.add(image.parent) if image.parent not in still and \
                            not self._is_tagged(image.parent) else None
                    changed = True
            return CachePruneReport(tuple(deleted), reclaimed)

        return await trio.to_thread.run_sync(work)

    def _is_tagged(self, image_id: str) -> bool:
        try:
            return bool(self.images.get(image_id).repo_tags)
        except NotFound:
            return True


def _points_at(images, tag: str, image_id: str) -> bool:
    try:
        return images.resolve(parse_reference(tag).familiar()).id == image_id and \
            parse_reference(tag).familiar() in images.get(image_id).repo_tags
    except (NotFound, InvalidParameter):
        return False


def _validate(options: BuildOptions) -> None:
    if options.platform:
        wanted = options.platform.split("/")
        if wanted[0] != "linux" or (len(wanted) > 1 and wanted[1] not in (_go_arch(), "")):
            raise InvalidParameter(f'"{options.platform}": platform not supported by this daemon '
                                   f"(linux/{_go_arch()})")
