"""One build stage, instruction by instruction, as dockerd's classic builder runs it: each
step makes an image (parent = the previous step's) and is looked up in the layer cache
first; RUN runs a real container through the ContainerManager and commits its upper dir;
COPY/ADD/WORKDIR write into an overlay workspace; the other instructions only change the
config (an empty layer in the history)."""

from __future__ import annotations

import contextlib
import datetime
import os
import posixpath
import re
import time

import attrs
import trio

from engine.errors import EngineError, InvalidParameter, NotFound

from . import context as ctx
from .copy import Owner, copy_sources
from .layers import commit_upper
from .parser import Node, parse_line
from .shell import ShellLex, env_dict

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Build args usable without an ARG line (Docker's predefined proxy args).
PREDEFINED_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}


class StepFailed(EngineError):
    """A step failed during the build; `code` becomes the CLI's exit status."""

    status = 500

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _now() -> str:
    t = time.time_ns()
    base = datetime.datetime.fromtimestamp(t // 10**9, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{t % 10**9:09d}Z"


def go_quote_list(items: list[str]) -> str:
    """Go's %q of a []string: ["a" "b"]."""
    import json

    return "[" + " ".join(json.dumps(i) for i in items) + "]"


@attrs.define
class StageState:
    image: object | None                  # engine.images.Image; None for FROM scratch
    config: dict
    history: list[dict]
    diff_ids: list[str]
    architecture: str
    author: str = ""
    args: dict[str, str | None] = attrs.Factory(dict)
    cmd_set: bool = False

    @property
    def image_id(self) -> str:
        return self.image.id if self.image is not None else ""


class StageRunner:
    """Runs one stage's instructions. `build` is the Build it belongs to (options, output,
    images, containers, cache, context directory, finished stages)."""

    def __init__(self, build, stage):
        self.b = build
        self.stage = stage
        self.lex = ShellLex(build.plan.escape)
        self.state: StageState | None = None

    # ------------------------------------------------------------------ helpers

    def env(self) -> dict[str, str]:
        """What substitution sees: build args (declared in this stage), then ENV over them."""
        out = {k: v for k, v in self.state.args.items() if v is not None}
        out.update(env_dict(self.state.config.get("Env")))
        return out

    def word(self, text: str) -> str:
        return self.lex.word(text, self.env())

    def shell(self) -> list[str]:
        return list(self.state.config.get("Shell") or DEFAULT_SHELL)

    def _build_args_env(self) -> list[str]:
        env_keys = set(env_dict(self.state.config.get("Env")))
        return [f"{k}={v}" for k, v in sorted(self.state.args.items())
                if v is not None and k not in env_keys]

    async def out(self, text: str) -> None:
        await self.b.output.stream(text)

    # ------------------------------------------------------------------ commit

    def make_image(self, config: dict, container_config: dict, diff_id: str | None,
                    container_id: str = "") -> object:
        st = self.state
        created = _now()
        entry = {"created": created, "created_by": " ".join(container_config.get("Cmd") or [])}
        if st.author:
            entry["author"] = st.author
        if diff_id is None:
            entry["empty_layer"] = True
        diff_ids = list(st.diff_ids) + ([diff_id] if diff_id else [])
        image_config = {
            "architecture": st.architecture,
            "author": st.author,
            "config": config,
            "container": container_id,
            "container_config": container_config,
            "created": created,
            "docker_version": "20.10.0",
            "history": list(st.history) + [entry],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if not st.author:
            del image_config["author"]
        return self.b.images.create_image(image_config, None, parent=st.image_id)

    def _adopt(self, image, config: dict) -> None:
        self.state.image = image
        self.state.config = config
        self.state.history = list(image.config.get("history") or [])
        self.state.diff_ids = list(image.diff_ids)

    def _probe(self, container_config: dict, config: dict):
        """Cache lookup: local records first, then --cache-from images."""
        if self.b.options.nocache:
            return None
        parent = self.state.image
        hit = self.b.cache.lookup(self.state.image_id, container_config)
        if hit is not None and self.b.cache_allowed is not None and hit.id not in self.b.cache_allowed:
            hit = None
        if hit is None:
            created_by = " ".join(container_config.get("Cmd") or [])
            for source in self.b.cache_sources:
                matched = self.b.cache.match_source(source, parent, created_by)
                if matched is None:
                    continue
                history, diffs = matched
                if len(history) == len(source.config.get("history") or []) and \
                        diffs == list(source.diff_ids) and source.container_config == config:
                    hit = source  # the cache image's own last step
                    self.b.cache.record(self.state.image_id, container_config, hit,
                                        self._description(container_config), 0)
                    break
                image_config = {
                    "architecture": source.config.get("architecture", self.state.architecture),
                    "config": config, "container_config": container_config,
                    "created": history[-1].get("created") or _now(), "docker_version": "20.10.0",
                    "history": history, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs},
                }
                hit = self.b.images.create_image(image_config, None, parent=self.state.image_id)
                self.b.cache.record(self.state.image_id, container_config, hit,
                                    self._description(container_config), 0)
                break
        return hit

    def _description(self, container_config: dict) -> str:
        cmd = container_config.get("Cmd") or []
        text = " ".join(cmd)
        return text.replace("/bin/sh -c #(nop) ", "").strip()

    def _layer_size(self, diff_id: str | None, image) -> int:
        if not diff_id:
            return 0
        meta = self.b.images.layer_meta(image.chain_ids[-1])
        return int(meta.get("size", 0))

    async def commit_config(self, config: dict, comment: str, make_layer=None) -> None:
        """A step recorded as a no-op command: probe the cache, else make an image — with an
        empty layer, or with the layer `make_layer()` (async → diff id) commits (WORKDIR,
        whose comment dockerd records as one word as it does COPY's)."""
        container_config = dict(config)
        container_config["Cmd"] = _nop_cmd(self.shell(), comment, one_word=make_layer is not None)
        hit = self._probe(container_config, config)
        if hit is not None:
            await self.out(" ---> Using cache\n")
            self._adopt(hit, config)
        else:
            diff_id = await make_layer() if make_layer is not None else None
            image = await trio.to_thread.run_sync(self.make_image, config, container_config, diff_id)
            self.b.cache.record(self.state.image_id, container_config, image, comment,
                                self._layer_size(diff_id, image))
            self._adopt(image, config)
        await self.out(f" ---> {self.state.image.short_id}\n")

    # ------------------------------------------------------------------ FROM

    async def begin(self) -> None:
        stage = self.stage
        base = self.b.expand_meta(stage.base)
        if not base:
            raise StepFailed(f"base name ({stage.base}) should not be blank")
        earlier = self.b.stage_result(base, before=stage.index)
        image = None
        if earlier is not None:
            image = earlier
        elif base.lower() != "scratch":
            image = await self.b.base_image(base)
        if image is not None:
            config = dict(image.container_config)
            self.state = StageState(image=image, config=config, history=list(image.config.get("history") or []),
                                    diff_ids=list(image.diff_ids),
                                    architecture=image.config.get("architecture") or self.b.architecture)
            await self.out(f" ---> {image.short_id}\n")
        else:
            self.state = StageState(image=None, config={}, history=[], diff_ids=[], architecture=self.b.architecture)
        env = list(self.state.config.get("Env") or [])
        if not any(e.startswith("PATH=") for e in env):
            self.state.config["Env"] = env + [DEFAULT_PATH]
        triggers = list(self.state.config.get("OnBuild") or [])
        self.state.config["OnBuild"] = None
        if triggers:
            await self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for text in triggers:
                node = parse_line(text, stage.line, self.b.plan.escape)
                if node.keyword in ("onbuild", "from", "maintainer"):
                    raise StepFailed(f"{node.keyword.upper()} isn't allowed as an ONBUILD trigger")
                await self.dispatch(node)

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, node: Node) -> None:
        handler = getattr(self, "_" + node.keyword)
        await handler(node)

    async def _arg(self, node: Node) -> None:
        words = []
        for item in node.args:
            name, eq, default = item.partition("=")
            value = None
            if eq:
                value = self.word(default)
            if name in self.b.options.buildargs and self.b.options.buildargs[name] is not None:
                value = self.b.options.buildargs[name]
            elif not eq and name in self.b.meta_values:
                value = self.b.meta_values[name]
            self.state.args[name] = value
            self.b.used_args.add(name)
            words.append(item if not eq else f"{name}={default}")
        await self.commit_config(dict(self.state.config), "ARG " + " ".join(words))

    async def _env(self, node: Node) -> None:
        config = dict(self.state.config)
        env = list(config.get("Env") or [])
        shown = []
        before = self.env()  # every word sees the values from before this line (Docker's rule)
        for item in node.args:
            expanded = self.lex.word(item, before)
            key, _, value = expanded.partition("=")
            if not key:
                raise StepFailed("ENV names can not be blank")
            entry = f"{key}={value}"
            for i, e in enumerate(env):
                if e.partition("=")[0] == key:
                    env[i] = entry
                    break
            else:
                env.append(entry)
            shown.append(entry)
        config["Env"] = env
        await self.commit_config(config, "ENV " + " ".join(shown))

    async def _label(self, node: Node) -> None:
        config = dict(self.state.config)
        labels = dict(config.get("Labels") or {})
        shown = []
        for item in node.args:
            key, _, value = item.partition("=")
            key, value = self.word(key), self.word(value)
            if not key:
                raise StepFailed("LABEL names can not be blank")
            labels[key] = value
            shown.append(f"{key}={value}")
        config["Labels"] = labels
        await self.commit_config(config, "LABEL " + " ".join(shown))

    async def _maintainer(self, node: Node) -> None:
        self.state.author = node.args[0]
        await self.commit_config(dict(self.state.config), "MAINTAINER " + node.args[0])

    async def _expose(self, node: Node) -> None:
        config = dict(self.state.config)
        ports = dict(config.get("ExposedPorts") or {})
        words = []
        for raw in node.args:
            for port in self.lex.words(raw, self.env()):
                words.append(port)
                number, _, proto = port.partition("/")
                proto = (proto or "tcp").lower()
                if proto not in ("tcp", "udp", "sctp"):
                    raise StepFailed(f"invalid proto: {proto}")
                first, _, last = number.partition("-")
                try:
                    lo, hi = int(first), int(last or first)
                except ValueError:
                    raise StepFailed(f"Invalid containerPort: {number}") from None
                for p in range(lo, hi + 1):
                    ports[f"{p}/{proto}"] = {}
        config["ExposedPorts"] = ports
        await self.commit_config(config, "EXPOSE " + " ".join(words))

    async def _user(self, node: Node) -> None:
        config = dict(self.state.config)
        config["User"] = self.word(node.args[0])
        await self.commit_config(config, "USER " + config["User"])

    async def _stopsignal(self, node: Node) -> None:
        from engine.containers.config import parse_signal

        value = self.word(node.args[0])
        try:
            parse_signal(value)
        except InvalidParameter as exc:
            raise StepFailed(exc.message) from None
        config = dict(self.state.config)
        config["StopSignal"] = value
        await self.commit_config(config, "STOPSIGNAL " + value)

    async def _volume(self, node: Node) -> None:
        config = dict(self.state.config)
        volumes = dict(config.get("Volumes") or {})
        shown = []
        for raw in node.args:
            for v in ([self.word(raw)] if node.json_form else self.lex.words(raw, self.env())):
                v = v.strip()
                if not v:
                    raise StepFailed("VOLUME specified can not be an empty string")
                volumes[v] = {}
                shown.append(v)
        config["Volumes"] = volumes
        await self.commit_config(config, f"VOLUME [{' '.join(shown)}]")

    async def _shell(self, node: Node) -> None:
        config = dict(self.state.config)
        config["Shell"] = list(node.args)
        await self.commit_config(config, f"SHELL [{' '.join(node.args)}]")

    def _command(self, node: Node) -> list[str]:
        if node.json_form:
            return list(node.args)
        return self.shell() + [node.args[0]] if node.args else []

    async def _cmd(self, node: Node) -> None:
        config = dict(self.state.config)
        cmd = self._command(node)
        config["Cmd"] = cmd
        self.state.cmd_set = True
        await self.commit_config(config, "CMD " + go_quote_list(cmd))

    async def _entrypoint(self, node: Node) -> None:
        config = dict(self.state.config)
        entrypoint = self._command(node)
        config["Entrypoint"] = entrypoint or None
        if not self.state.cmd_set:
            config["Cmd"] = None
        await self.commit_config(config, "ENTRYPOINT " + go_quote_list(entrypoint))

    async def _healthcheck(self, node: Node) -> None:
        config = dict(self.state.config)
        if node.args[0] == "NONE":
            config["Healthcheck"] = {"Test": ["NONE"]}
        else:
            test = (["CMD"] + list(node.args[1:])) if node.json_form else ["CMD-SHELL", node.args[1]]
            health: dict = {"Test": test}
            for flag in node.flags:
                name, _, value = flag[2:].partition("=")
                if name == "retries":
                    try:
                        health["Retries"] = int(value)
                    except ValueError:
                        raise StepFailed(f"invalid value for --retries: {value}") from None
                    if health["Retries"] < 0:
                        raise StepFailed("--retries cannot be negative")
                else:
                    key = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                           "start-interval": "StartInterval"}[name]
                    health[key] = parse_duration(value, name)
            config["Healthcheck"] = health
        await self.commit_config(config, "HEALTHCHECK " + " ".join(node.args))

    async def _onbuild(self, node: Node) -> None:
        config = dict(self.state.config)
        expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
        config["OnBuild"] = list(config.get("OnBuild") or []) + [expression]
        await self.commit_config(config, "ONBUILD " + expression)

    async def _workdir(self, node: Node) -> None:
        config = dict(self.state.config)
        path = self.word(node.args[0])
        if not path.startswith("/"):
            path = posixpath.join(config.get("WorkingDir") or "/", path)
        path = posixpath.normpath(path)
        config["WorkingDir"] = path

        async def make_workdir() -> str:
            async with self.b.workspace(self.state.image) as ws:
                def work():
                    copy_sources_mkdir(ws.rootfs, path)
                    return commit_upper(self.b.images, self.state.image, ws.upper, self.b.tmp_dir)

                return await trio.to_thread.run_sync(work)

        await self.commit_config(config, "WORKDIR " + path, make_workdir)

    # ------------------------------------------------------------------ RUN

    async def _run(self, node: Node) -> None:
        st = self.state
        if st.image is None:
            raise StepFailed("failed to run a command in a FROM scratch stage with no content: "
                             "no such file or directory", 1)
        cmd = self._command(node)
        args_env = self._build_args_env()
        save_cmd = ([f"|{len(args_env)}"] + args_env + cmd) if args_env else cmd
        config = dict(st.config)
        container_config = dict(config)
        container_config["Cmd"] = save_cmd
        hit = self._probe(container_config, config)
        if hit is not None:
            await self.out(" ---> Using cache\n")
            self._adopt(hit, config)
            await self.out(f" ---> {self.state.image.short_id}\n")
            return
        parent_id = st.image_id
        image, diff_id = await self.b.run_container(self, cmd, args_env, config, container_config)
        self.b.cache.record(parent_id, container_config, image, " ".join(save_cmd),
                            self._layer_size(diff_id, image))
        self._adopt(image, config)
        await self.out(f" ---> {image.short_id}\n")

    # ------------------------------------------------------------------ COPY / ADD

    async def _copy(self, node: Node) -> None:
        await self._copy_or_add(node, "COPY")

    async def _add(self, node: Node) -> None:
        await self._copy_or_add(node, "ADD")

    async def _copy_or_add(self, node: Node, what: str) -> None:
        flags = {f[2:].partition("=")[0]: f[2:].partition("=")[2] for f in node.flags}
        env = self.env()
        words = [self.lex.word(a, env) for a in node.args] if node.json_form else \
            [w for a in node.args for w in (self.lex.words(a, env) or [""])]
        if len(words) < 2:
            raise StepFailed(f"{what} requires at least two arguments")
        srcs, dest = words[:-1], words[-1]
        chown = self.lex.word(flags["chown"], env) if flags.get("chown") else ""
        chmod = None
        if flags.get("chmod"):
            try:
                chmod = int(flags["chmod"], 8)
            except ValueError:
                raise StepFailed(f"invalid chmod parameter: {flags['chmod']}") from None
        source_ref = self.lex.word(flags["from"], env) if flags.get("from") else None
        async with contextlib.AsyncExitStack() as stack:
            source_image = None
            if source_ref is not None:
                source_image = self.b.stage_result(source_ref, before=self.stage.index)
                if source_image is None:
                    source_image = await self.b.base_image(source_ref)

            async def gather() -> list[tuple[str, str]]:
                """[(host path, name)]: the sources, from the mounted --from image or the
                context on disk."""
                if source_image is not None:
                    root = (await stack.enter_async_context(self.b.workspace(source_image))).rootfs
                else:
                    root = await self.b.context_on_disk()
                found: list[tuple[str, str]] = []
                for src in srcs:
                    if what == "ADD" and re.match(r"^https?://", src):
                        found.append(await self.b.download(src))
                        continue
                    try:
                        if source_image is None:
                            found.extend((os.path.join(root, p) if p else root, n)
                                         for p, n in self.b.context.find(src, what))
                        else:
                            found.extend(await trio.to_thread.run_sync(ctx.find_sources, root, src, what))
                    except NotFound as exc:
                        raise StepFailed(exc.message) from None
                return found

            sources = None
            if source_image is not None:
                memo = (source_image.id, tuple(srcs))
                digest = self.b.cache.source_sums.get(memo)
                if digest is None:
                    sources = await gather()
                    digest = await trio.to_thread.run_sync(ctx.checksum, [p for p, _ in sources])
                    self.b.cache.source_sums[memo] = digest
            elif what == "ADD" and any(re.match(r"^https?://", src) for src in srcs):
                sources = await gather()
                digest = await trio.to_thread.run_sync(ctx.checksum, [p for p, _ in sources])
            else:
                def context_sum() -> str:
                    return self.b.context.checksum([p for src in srcs for p, _ in self.b.context.find(src, what)])

                try:
                    if self.b.context_in_memory:
                        digest = context_sum()  # hashing bytes already in memory
                    else:
                        digest = await trio.to_thread.run_sync(context_sum)
                except NotFound as exc:
                    raise StepFailed(exc.message) from None
            flags_text = "".join(f"--{k}={v} " for k, v in (("chown", chown), ("chmod", flags.get("chmod")))
                                 if v)
            if source_ref is not None:
                flags_text = f"--from={source_ref} " + flags_text
            comment = f"{what} {flags_text}{digest} in {dest} "
            config = dict(self.state.config)
            container_config = dict(config)
            container_config["Cmd"] = _nop_cmd(self.shell(), comment, one_word=True)
            hit = self._probe(container_config, config)
            if hit is not None:
                await self.out(" ---> Using cache\n")
                self._adopt(hit, config)
                await self.out(f" ---> {self.state.image.short_id}\n")
                return
            if sources is None:
                sources = await gather()
            ws = await stack.enter_async_context(self.b.workspace(self.state.image))
            workdir = config.get("WorkingDir") or "/"

            def work():
                owner = Owner()
                if chown:
                    from engine.containers.config import resolve_user

                    try:
                        user = resolve_user(ws.rootfs, chown)
                    except EngineError as exc:
                        raise StepFailed(f"unable to convert uid/gid chown string to host mapping: {exc.message}") from None
                    owner = Owner(user.uid, user.gid)
                try:
                    copy_sources(ws.rootfs, sources, dest, workdir, owner=owner, chmod=chmod,
                                 extract=(what == "ADD"), what=what)
                except InvalidParameter as exc:
                    raise StepFailed(exc.message) from None
                except OSError as exc:
                    raise StepFailed(f"{what} failed: {exc.strerror or exc}") from None
                return commit_upper(self.b.images, self.state.image, ws.upper, self.b.tmp_dir)

            diff_id = await trio.to_thread.run_sync(work)
            image = await trio.to_thread.run_sync(self.make_image, config, container_config, diff_id)
            self.b.cache.record(self.state.image_id, container_config, image, comment.strip(),
                                self._layer_size(diff_id, image))
            self._adopt(image, config)
            await self.out(f" ---> {image.short_id}\n")


def copy_sources_mkdir(rootfs: str, path: str) -> None:
    from .copy import _mkdir_p

    _mkdir_p(rootfs, path, Owner())


def _nop_cmd(shell: list[str], comment: str, one_word: bool = False) -> list[str]:
    """A step's no-op command as dockerd records it (history's CreatedBy is it joined): the
    comment a word of its own, or, for COPY/ADD/WORKDIR, one word with "#(nop) "."""
    return list(shell) + (["#(nop) " + comment] if one_word else ["#(nop) ", comment])


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def parse_duration(value: str, flag: str) -> int:
    """Go's time.ParseDuration ("30s", "1m30s", "500ms") → nanoseconds."""
    text = value.strip()
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise StepFailed(f'time: invalid duration "{value}" for --{flag}')
    if flag != "start-period" and 0 < total < 1e6:
        raise StepFailed(f"Interval \"{flag}\" cannot be less than 1ms")
    return int(total)
