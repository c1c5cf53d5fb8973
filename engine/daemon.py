"""pyengined: the root nursery. Owns the config, event bus and managers; recovers state at
start; stops everything by cancellation on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import hashlib
import logging
import os
import signal
import socket
import sys
import uuid

import trio

from engine import __version__
from engine.config import DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT, DEFAULT_HOST, Config, options

log = logging.getLogger("pyengined")

#: The cyclic GC's generation-0 threshold once the daemon serves (CPython's default: 700).
#: Nearly everything the daemon allocates is freed by reference counting: at 700 a container
#: burst ran ~0.2 collections per container, ~0.19 ms of CPU per container over the three
#: generations, none finding garbage; at 5000, one per ~130 containers. Cyclic garbage still
#: goes, once this many more objects are alive.
GC_THRESHOLD0 = 5000

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
              "fatal": logging.CRITICAL}


class Daemon:
    def __init__(self, config: Config) -> None:
        from engine.containers.exec import ExecManager
        from engine.containers.manager import ContainerManager
        from engine.events import EventBus
        from engine.images import ImageStore
        from engine.volumes import VolumeManager
        from engine.networks import NetworkManager

        self.config = config
        self.events = EventBus()
        self.images = ImageStore(config.images_dir, _registry_policy(config))
        self.id = ""  # the engine's ID (<data root>/engine-id), read at run
        self.networks = NetworkManager(config, self.events)
        self.volumes = VolumeManager(config, self.events)
        self.runtime = _make_runtime(config)
        from engine.api import container_spec_from_docker

        self.containers = ContainerManager(config, self.images, self.events, self.volumes, self.runtime,
                                           legacy_records=container_spec_from_docker)
        self.containers.networks = self.networks
        self.execs = ExecManager(self.containers)
        from engine.build import Builder

        self.builder = Builder(config, self.images, self.containers)

    def info_counts(self) -> tuple:
        """(engine.containers.manager.ContainerCounts, number of images) for /info."""
        return self.containers.counts(), len(self.images.list())

    def _clear_scratch(self) -> None:
        """<data_root>/tmp holds uploads, exports and debootstrap trees in progress: whatever a
        killed daemon left there is garbage."""
        from engine.images import remove_tree_with_mounts

        scratch = os.path.join(self.config.data_root, "tmp")
        if os.path.isdir(scratch):
            for entry in os.listdir(scratch):
                remove_tree_with_mounts(os.path.join(scratch, entry))

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from engine.api import create_app, serve_api, server_tls_context
        from engine.runtime import dataroot

        os.makedirs(self.config.data_root, mode=0o711, exist_ok=True)
        self.id = await trio.to_thread.run_sync(engine_id, self.config.data_root)
        await trio.to_thread.run_sync(dataroot.share, self.config.data_root)
        await trio.to_thread.run_sync(self._clear_scratch)
        # The runtime outlives the managers: supervisors wait for their processes through it
        # until the very end of a shutdown.
        async with trio.open_nursery() as outer:
            if hasattr(self.runtime, "run"):
                await outer.start(self.runtime.run)
            try:
                adopted = await self.runtime.adopt()
                if not self.config.live_restore:
                    adopted = await _stop_adopted(adopted)
                self.networks.live = {cid for cid, entry in adopted.items() if entry.process is not None}
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.networks.run)
                    await nursery.start(self.containers.run, adopted)
                    await self.builder.recover()
                    tls = None
                    if self.config.tlscert:
                        tls = server_tls_context(self.config.tlscert, self.config.tlskey,
                                                 self.config.tlscacert, verify=self.config.tlsverify)
                    await nursery.start(functools.partial(serve_api, socket_gid=self.config.group),
                                        create_app(self), self.config.hosts, tls)
                    log.info("pyengined %s listening on %s", __version__, ", ".join(self.config.hosts))
                    task_status.started()
            finally:
                with trio.CancelScope(shield=True):
                    leaving = self.containers.leaves_containers()
                    if leaving:
                        log.info("live restore: containers keep running without the daemon")
                    else:
                        # After every container has stopped: bridges, veths and the nft table go.
                        await self.networks.shutdown()
                    await self.runtime.aclose(stop=not leaving)
                    if not leaving:
                        await trio.to_thread.run_sync(dataroot.release, self.config.data_root)

    def detach(self) -> None:
        """A stop that leaves running containers to the next daemon (live restore)."""
        if self.runtime.live_restore:
            self.containers.detach()

    async def reload(self) -> None:
        """SIGHUP: the configuration file read again; its reloadable options
        (engine.config.options.RELOADABLE) apply from now on, as dockerd's, announced by a
        `daemon reload` event; a bad file changes nothing (logged)."""
        if self.config.sources is None:
            return
        try:
            changed, waiting = await trio.to_thread.run_sync(options.reload, self.config.sources, self.config)
        except options.ConfigError as exc:
            log.error("configuration not reloaded: %s", exc)
            return
        for field, value in changed.items():
            setattr(self.config, field, value)
        _set_log_level(self.config)
        self.images.registry_policy = _registry_policy(self.config)
        if waiting:
            log.warning("configuration reloaded; these change only at a restart: %s", ", ".join(waiting))
        log.info("configuration reloaded (%s)", ", ".join(changed) or "no change")
        self.events.publish("daemon", "reload", self.id, reload_attributes(self.config))

    async def stop_containers(self) -> None:
        """A stop without live restore: running containers are stopped as `docker stop` does
        (engine.containers.ContainerManager.shut_down) before anything is torn down."""
        if not self.runtime.live_restore:
            await self.containers.shut_down(self.config.shutdown_timeout)


def reload_attributes(config: Config) -> dict[str, str]:
    """A `daemon reload` event's attributes: the reloadable options as dockerd shows them
    (Go's %v of a list: "[a b]"), and the host name."""
    def shown(value) -> str:
        if isinstance(value, (list, tuple)):
            return "[" + " ".join(map(str, value)) + "]"
        return str(value).lower() if isinstance(value, bool) else str(value)

    out = {field.replace("_", "-"): shown(getattr(config, field)) for field in options.RELOADABLE}
    out["name"] = socket.gethostname()
    return dict(sorted(out.items()))


def _registry_policy(config: Config):
    from engine.images import RegistryPolicy

    return RegistryPolicy(tuple(config.insecure_registries), tuple(config.registry_mirrors),
                          config.max_concurrent_downloads, config.max_concurrent_uploads)


def _set_proxy_env(proxies: dict[str, str]) -> None:
    """The configured proxies as this process's environment, which the registry clients
    (httpx) read, upper and lower case (both spellings are in use)."""
    for key, name in (("http-proxy", "HTTP_PROXY"), ("https-proxy", "HTTPS_PROXY"), ("no-proxy", "NO_PROXY")):
        if key in proxies:
            os.environ[name] = os.environ[name.lower()] = proxies[key]


def _set_log_level(config: Config) -> None:
    logging.getLogger().setLevel(logging.DEBUG if config.debug else LOG_LEVELS[config.log_level])


def engine_id(data_root: str) -> str:
    """The engine's ID (docker info's), made once per data root."""
    path = os.path.join(data_root, "engine-id")
    try:
        with open(path) as f:
            ident = f.read().strip()
        if ident:
            return ident
    except FileNotFoundError:
        pass
    ident = str(uuid.uuid4())
    with open(path + ".tmp", "w") as f:
        f.write(ident + "\n")
    os.replace(path + ".tmp", path)
    return ident


async def _stop_adopted(adopted: dict) -> dict:
    """Without live restore a restarted daemon does not take over what a crashed one left
    running (as dockerd): those containers are killed and recorded as lost."""
    from engine.runtime import Adopted

    out = {}
    for cid, entry in adopted.items():
        if entry.process is None:
            out[cid] = entry
            continue
        entry.process.kill()
        with trio.move_on_after(10):
            await entry.process.wait()
        entry.process.close()
        for fd in entry.fds:
            os.close(fd)
        out[cid] = Adopted(cid, entry.pid)
    return out


def _make_runtime(config: Config):
    from engine.runtime import InProcessRuntime, SpawnerRuntime, spawner

    if not config.spawner:
        return InProcessRuntime()
    if not spawner.available():
        log.warning("%s is missing (rebuild with `pip install -e .`): containers are spawned "
                    "by the daemon itself, without live restore", spawner.binary_path())
        return InProcessRuntime()
    runtime = SpawnerRuntime(config.data_root, live_restore=config.live_restore, spill_max=config.spill_max)
    if len(os.fsencode(runtime.socket_path)) >= 108:  # sockaddr_un's limit
        log.warning("data root too long for the spawner's socket: containers are spawned by "
                    "the daemon itself, without live restore")
        return InProcessRuntime()
    return runtime


def _default_cgroup_parent(data_root: str) -> str:
    """A private daemon (tests) gets its own cgroup parent, so its recovery never touches
    another daemon's containers."""
    if os.path.abspath(data_root) == DEFAULT_DATA_ROOT:
        return "pyengine"
    return "pyengine-" + hashlib.sha256(os.path.abspath(data_root).encode()).hexdigest()[:10]


def parse_args(argv: list[str] | None) -> Config:
    """Flags and the configuration file (engine.config.options) into a Config; a bad option
    exits with a one-line message."""
    parser = argparse.ArgumentParser(prog="pyengined", description="pyengine daemon")
    parser.add_argument("--config-file", default=None,
                        help=f"daemon options as JSON, dockerd's keys (default {options.DEFAULT_CONFIG_FILE})")
    options.add_flags(parser)
    parser.add_argument("-v", "--version", action="version", version=f"pyengined {__version__}")
    given = vars(parser.parse_args(argv))
    path, explicit = options.config_file_path(given.pop("config_file"))
    sources = options.Sources(path, explicit, dict(given))
    try:
        values = options.merge(given, options.read_file(path, explicit), path)
        _check_container_defaults(values)
    except options.ConfigError as exc:
        parser.exit(1, f"pyengined: {exc}\n")
    hosts = values.pop("hosts", None) or [os.environ.get("PYENGINE_HOST") or DEFAULT_HOST]
    for host in hosts:
        if not (host.startswith("unix://") or host.startswith("tcp://")):
            parser.exit(1, f"pyengined: invalid host {host!r}: use unix:///path or tcp://host:port\n")
    data_root = os.path.abspath(values.pop("data_root", None)
                                or os.environ.get("PYENGINE_DATA_ROOT") or DEFAULT_DATA_ROOT)
    values["exec_root"] = os.path.abspath(values.get("exec_root") or DEFAULT_EXEC_ROOT)
    values["cgroup_parent"] = values.get("cgroup_parent") or _default_cgroup_parent(data_root)
    return Config(data_root=data_root, hosts=hosts, sources=sources, **values)


def _check_container_defaults(values: dict) -> None:
    """What the container defaults must be to this engine (as a container's own would be)."""
    from engine import errors
    from engine.containers.config import validate_log_config, validate_ulimit
    from engine.containers.spec import Ulimit
    from engine.runtime import seccomp

    try:
        validate_log_config(values.get("log_driver", "json-file"), values.get("log_opts", {}))
        for limit in values.get("default_ulimits", ()):
            validate_ulimit(Ulimit(limit.name, limit.soft, limit.hard))
        if values.get("seccomp_profile", "") not in ("", "builtin", "unconfined"):
            seccomp.profile_file(values["seccomp_profile"])
    except errors.EngineError as exc:
        raise options.ConfigError(exc.message) from None


async def _serve(config: Config) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:
            daemon = Daemon(config)
            await nursery.start(daemon.run)
            _tune_gc()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    await daemon.reload()
                    continue
                log.info("received %s, shutting down", signal.Signals(signum).name)
                daemon.detach()
                await _stop_containers(daemon, signals)
                nursery.cancel_scope.cancel()
                break


async def _stop_containers(daemon: Daemon, signals) -> None:
    """Without live restore, containers stop gracefully first (Daemon.stop_containers); one
    more SIGTERM/SIGINT meanwhile cuts that short (they are killed)."""
    async with trio.open_nursery() as stopping:
        async def on_next_signal() -> None:
            async for signum in signals:
                if signum != signal.SIGHUP:
                    log.warning("received %s again: killing the containers", signal.Signals(signum).name)
                    stopping.cancel_scope.cancel()

        stopping.start_soon(on_next_signal)
        await daemon.stop_containers()
        stopping.cancel_scope.cancel()


def _tune_gc() -> None:
    """Once started: what the daemon built at startup (modules, routes, managers, recovered
    records) is never scanned again (gc.freeze), and collections run less often."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD0, *gc.get_threshold()[1:])


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if config.debug else LOG_LEVELS[config.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if os.geteuid() != 0:
        print("pyengined: must run as root", file=sys.stderr)
        return 1
    _set_proxy_env(config.proxies)
    try:
        with _pidfile(config.pidfile):
            trio.run(_serve, config)
    except KeyboardInterrupt:
        pass
    except _PidfileInUse as exc:
        print(f"pyengined: {exc}", file=sys.stderr)
        return 1
    return 0


class _PidfileInUse(Exception):
    pass


@contextlib.contextmanager
def _pidfile(path: str | None):
    """--pidfile: our pid there while we run; refused while it names another live process
    (dockerd's check), removed at exit."""
    if not path:
        yield
        return
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid() and os.path.exists(f"/proc/{pid}"):
        raise _PidfileInUse(f"pid file found, ensure pyengined is not running or delete {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
