"""ContainerManager: owns every container record and one supervisor task tree per live
container. The API's container routes call only this.

Task tree (structured concurrency):

    ContainerManager.run  ── nursery
        └── supervisor(container)        one per started container; owns restart policy
              └── nursery: stdout/stderr pumps, pidfd exit wait, detached execs

Stopping a container signals its process and waits for the supervisor to record the exit;
shutting the daemon down cancels the manager's nursery, and every supervisor's `finally`
kills and reaps its process and undoes mounts and cgroups.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator

import attrs
import trio

from engine import errors
from engine.containers import config as cfg
from engine.containers import health, names, restore, volumesfrom
from engine.containers import propagation as bind_propagation
from engine.containers.cgroupparent import cgroup_of
from engine.containers.directory import ContainerDirectory
from engine.containers.initlayer import InitLayers
from engine.containers.model import Container, ExitStatus, Status, now_ns
from engine.containers.spec import ContainerConfig, HostConfig
from engine.containers.launch import Launching, open_spill, start_error
from engine.containers.reclaim import Reclaimer, reclaim_now as _reclaim_now
from engine.containers.runspec import check_donors
from engine.containers.streams import ContainerStreams
from engine.containers.supervision import Run, Supervising, Supervisor
from engine.runtime import InProcessRuntime, SpawnError, cgroups

log = logging.getLogger(__name__)

STOP_GRACE_DEFAULT = 10


@attrs.frozen
class ContainerCounts:
    """How many containers are in each state (/info)."""

    running: int = 0
    paused: int = 0
    stopped: int = 0  # every other state

    @property
    def total(self) -> int:
        return self.running + self.paused + self.stopped



def _stop_timeout(container: Container) -> float:
    """Seconds between a stop's signal and SIGKILL: --stop-timeout, else dockerd's 10 (a
    negative one: no SIGKILL)."""
    timeout = container.config.stop_timeout
    return STOP_GRACE_DEFAULT if timeout is None else timeout

class ContainerManager(ContainerDirectory, Launching, Supervising, ContainerStreams):
    """Owns every container record and its lifecycle verbs; the container's directory and
    rootfs mount, launching, supervision and the run's streams live in their own modules
    (directory.py, launch.py, supervision.py, streams.py), mixed in."""

    def __init__(self, config, images, events, volumes, runtime=None, legacy_records=None) -> None:
        self.config = config
        # engine.containers.record.LegacyReader: records of the format before the typed spec
        self.legacy_records = legacy_records
        self._detaching = False
        self._shutting_down = False  # the daemon stops them: no restart policy applies
        # engine.runtime.Runtime: creates, waits for and re-adopts container processes.
        self.runtime = runtime if runtime is not None else InProcessRuntime()
        self.images = images
        self.events = events
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self._supervisors: dict[str, Supervisor] = {}
        self._nursery: trio.Nursery | None = None
        # Deletes removed containers' files in the background (a daemon killed meanwhile
        # leaves them to the next start, which empties the scratch dir).
        self._reclaimer = Reclaimer()
        # Each image's init layer (/etc/hosts, /proc… as mount targets), made once per image.
        self._init_layers = InitLayers(images, os.path.join(config.data_root, "tmp"))
        self._ids = _IdSource()
        self.execs = None  # set by engine.containers.exec.ExecManager
        self.networks = None  # engine.networks.NetworkManager, set by the daemon
        # engine.volumes.VolumeManager, built by the daemon; loaded in run() after recovery and
        # shut down once every container has stopped.
        self.volumes = volumes

    # --- service ------------------------------------------------------------------------------
    async def run(self, adopted: dict | None = None, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The manager's service task: recovery (re-adopting the containers the runtime kept
        running, see engine.runtime.Runtime.adopt), then host supervisors until cancelled."""
        adopted = adopted or {}
        os.makedirs(self.config.containers_dir, exist_ok=True)
        containers, resume = await trio.to_thread.run_sync(
            restore.recover, self.config.containers_dir, self.config.cgroup_parent, adopted, self.legacy_records)
        for container in containers:
            self._containers[container.id] = container
            self._names[container.name] = container.id
            self._supervisors[container.id] = Supervisor()
        await self.volumes.load(set(self._containers))
        resumed = {container.id for container, _ in resume}
        await restore.let_go_unclaimed(self.runtime, adopted, resumed, self._containers, self._open_log)
        if self.runtime.spills:
            await trio.to_thread.run_sync(restore.remove_stale_output, self.all(), {
                cid: entry.pid for cid, entry in adopted.items() if cid in resumed})
            for cid, sup in self._supervisors.items():
                sup.output_clean = cid not in resumed
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reclaimer.run)
                self._nursery = nursery
                for container, entry in resume:
                    await self._resume(container, entry)
                for container in list(self._containers.values()):
                    if container.id in resumed:
                        continue
                    exited = adopted.get(container.id)
                    if self._restarts_on_boot(container) or (
                            exited is not None and exited.exit_code is not None
                            and self._should_restart(container, exited.exit_code)):
                        try:
                            await self.start(container.id)
                        except errors.EngineError as exc:
                            log.warning("restart of %s at daemon start failed: %s", container.name, exc)
                task_status.started()
                await trio.sleep_forever()
        finally:
            # Every supervisor has cleaned up (or, detaching, let go) by now.
            with trio.CancelScope(shield=True):
                if not self.leaves_containers():
                    await self.volumes.shutdown()
                    await trio.to_thread.run_sync(cgroups.remove_parent, self.config.cgroup_parent)

    def detach(self) -> None:
        """Live restore: the daemon stops but running containers stay with the runtime."""
        self._detaching = True

    async def shut_down(self, minimum: float) -> None:
        """The daemon stops without live restore, as dockerd's: every running container gets
        its stop signal and, after its stop timeout (--stop-timeout, else 10 s), SIGKILL, all
        at once; none is restarted and none counts as stopped by hand (a restart policy
        brings it back at the next daemon start). All of it takes at most `minimum` seconds or
        the longest stop timeout, if longer; what still runs then goes with the cancellation."""
        self._shutting_down = True
        running = [c for c in self._containers.values()
                   if (sup := self._supervisors.get(c.id)) is not None and (sup.run is not None or sup.cancel_scope)]
        if not running:
            return
        timeouts = {c.id: _stop_timeout(c) for c in running}
        log.info("stopping %d running containers (live restore is off)", len(running))
        with trio.move_on_after(max(minimum, *(t if t >= 0 else float("inf") for t in timeouts.values()))):
            async with trio.open_nursery() as nursery:
                for c in running:
                    nursery.start_soon(self._terminate, c, cfg.parse_signal(c.config.stop_signal), timeouts[c.id])

    def leaves_containers(self) -> bool:
        """Whether the stopping daemon leaves running containers behind (live restore)."""
        return self._detaching and any(sup.run is not None or sup.detached for sup in self._supervisors.values())

    async def _resume(self, container: Container, entry) -> None:
        """Supervise a container the runtime kept running while no daemon watched it."""
        sup = self._supervisors[container.id]
        sup.mount_refs = 1
        stdin, output_fds = restore.resumed_io(container, entry, self.runtime.spills)
        log_driver = self._open_log(container)
        spill = None
        if self.runtime.spills:
            # Log the spill from where the log stops: written while no daemon read, or read
            # by the last daemon but not logged when it died.
            logged = await restore.logged_so_far(container, entry.pid, log_driver)
            spill = open_spill(self.runtime, container, entry.pid, log_driver, logged)
        run = Run(process=entry.process, cgroup=cgroup_of(container, self.config.cgroup_parent),
                  log=log_driver, stdin=stdin, started_at_ns=container.state.started_at_ns or now_ns(),
                  output_fds=output_fds, spill=spill)
        await self.volumes.mount(container.id)
        if self.networks is not None:
            await self.networks.adopt(container, entry.pid)
        sup.done = trio.Event()
        await self._nursery.start(self._supervise, container, run)

    def _restarts_on_boot(self, container: Container) -> bool:
        policy = container.restart_policy.name
        return policy == "always" or (policy == "unless-stopped" and not container.manually_stopped)

    # --- lookup -------------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full id, name ("/name" too) or unique id prefix, as Docker resolves them."""
        if ref in self._containers:
            return self._containers[ref]
        name = ref.lstrip("/")
        if name in self._names:
            return self._containers[self._names[name]]
        if ref and re.fullmatch(r"[0-9a-f]+", ref):
            matches = [c for cid, c in self._containers.items() if cid.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise errors.InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise errors.no_such_container(ref)

    def all(self) -> list[Container]:
        return list(self._containers.values())

    def supervisor(self, container: Container) -> Supervisor:
        return self._supervisors[container.id]

    def image_in_use(self, image_id: str) -> tuple[str, bool] | None:
        """(container id, running) of a container using the image, running ones first."""
        users = [c for c in self._containers.values() if c.image_id == image_id]
        users.sort(key=lambda c: not c.state.status.is_live())
        return (users[0].id, users[0].state.status.is_live()) if users else None

    def counts(self) -> ContainerCounts:
        statuses = [c.state.status for c in self._containers.values()]
        running, paused = statuses.count(Status.RUNNING), statuses.count(Status.PAUSED)
        return ContainerCounts(running=running, paused=paused, stopped=len(statuses) - running - paused)

    # --- create -------------------------------------------------------------------------------
    async def create(self, config: ContainerConfig, host_config: HostConfig | None = None,
                     name: str | None = None, endpoints: dict | None = None,
                     platform: str = "") -> tuple[Container, list[str]]:
        """`config` as requested (the image's defaults are merged in here, once); `endpoints`:
        network ref → engine.networks.EndpointSettings (the API's typed NetworkingConfig);
        `platform` ("linux/arm64"): the image must be of it."""
        if not config.image:
            raise errors.InvalidParameter("Config cannot be empty in order to create a container")
        image = self.images.resolve(config.image)
        if platform and not image.matches_platform(platform):
            raise errors.NotFound(f"image with reference {config.image} was found but does not match the specified "
                                  f"platform: wanted {platform}, actual: {image.platform}")
        config = cfg.with_image_defaults(config, image.run_config)
        host_config = cfg.with_daemon_defaults(host_config or HostConfig(), self.config)
        host_config, warnings = cfg.validate_host_config(host_config)
        host_config = bind_propagation.for_daemon_root(host_config, self.config.data_root)
        check_donors(host_config, self.get)
        inherited = volumesfrom.resolve(host_config, self.get, self.volumes.container_mounts)
        if inherited.binds:
            host_config = attrs.evolve(host_config, inherited_binds=inherited.binds)
        if name:
            name = cfg.validate_name(name)
            self._check_name_free(name)
        else:
            name = names.generate(lambda n: n in self._names)
        if self.networks is not None:
            network_mode, attachments = self.networks.validate_create(host_config, endpoints or {})
            if network_mode != host_config.network_mode:
                host_config = attrs.evolve(host_config, network_mode=network_mode)
        else:
            attachments = []
        container_id = self._ids.new()
        if not config.hostname:
            config = attrs.evolve(config, hostname=container_id[:12])
        command = list(config.command)
        container = Container(
            id=container_id,
            name=name,
            created_ns=now_ns(),
            image_id=image.id,
            path=command[0],
            args=command[1:],
            config=config,
            host_config=host_config,
            directory=os.path.join(self.config.containers_dir, container_id),
        )
        self._names[name] = container_id  # reserve before the first await
        try:
            spare = self._reclaimer.take_spare() if self._init_layers.ready(image) else None
            if spare is not None:
                # A removed container's emptied directory renamed into place and four small
                # files written over its own: the kind of writes the loop makes at every state
                # change (record saves), cheaper than the thread hop.
                self._create_files(container, spare)
            else:
                await trio.to_thread.run_sync(self._create_files_and_init_layer, container, image)
            if self.networks is not None and attachments:  # a new id has nothing to forget
                await trio.to_thread.run_sync(self.networks.record, container_id, attachments)
            await self.volumes.prepare(container_id, config, host_config, inherited.volumes)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.volumes.forget(container_id, remove_anonymous=True)
            del self._names[name]
            shutil.rmtree(container.directory, ignore_errors=True)
            raise
        self._containers[container_id] = container
        self._supervisors[container_id] = Supervisor(host_clean=True, output_clean=True)
        self.publish(container, "create")
        return container, warnings

    def _check_name_free(self, name: str) -> None:
        if name in self._names:
            raise errors.Conflict(
                f'Conflict. The container name "/{name}" is already in use by container '
                f'"{self._names[name]}". You have to remove (or rename) that container to be able '
                "to reuse that name."
            )

    # --- start --------------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        container = self.get(ref)
        await self._wait_previous_run(container)
        status = container.state.status
        if status in (Status.RUNNING, Status.RESTARTING):
            raise errors.NotModified("container already started")
        if status is Status.PAUSED:
            raise errors.Conflict("cannot start a paused container, try unpause instead")
        if not status.can_start():
            raise container.wrong_state("start")
        container.manually_stopped = False
        sup = self._supervisors[container.id]
        sup.done = trio.Event()
        try:
            await self._nursery.start(self._supervise, container)
        except BaseException as exc:
            sup.done.set()
            if container.host_config.auto_remove:
                # As dockerd: a failed start of an auto-remove container removes it (the
                # docker CLI waits for that before it exits).
                with trio.CancelScope(shield=True):
                    await self.remove(container.id, force=True)
            if isinstance(exc, SpawnError):
                raise start_error(exc) from None
            raise



    async def stop(self, ref: str, timeout: int | None = None, stop_signal: str | None = None) -> None:
        """`stop_signal` (stop -s) over the container's StopSignal, checked before anything."""
        container = self.get(ref)
        number = cfg.parse_signal(stop_signal or container.config.stop_signal)
        if not container.state.status.can_stop():
            raise errors.NotModified("container already stopped")
        container.manually_stopped = True
        container.save()
        await self._terminate(container, number, _stop_timeout(container) if timeout is None else timeout)
        self.publish(container, "stop")

    async def _terminate(self, container: Container, stop_signal: int, timeout: float) -> None:
        sup = self._supervisors[container.id]
        if container.state.status is Status.RESTARTING and sup.cancel_scope is not None:
            sup.cancel_scope.cancel()
            await sup.done.wait()
            return
        run = sup.run
        if run is None:
            return
        # As dockerd: the stop signal first, also with no time to act on it (-t 0).
        await self._signal(container, run, stop_signal)
        with trio.move_on_after(timeout if timeout >= 0 else float("inf")):
            await run.exited.wait()
        if not run.exited.is_set():
            await self._signal(container, run, signal.SIGKILL)
            await run.exited.wait()
        await sup.done.wait()

    async def _signal(self, container: Container, run: Run, sig: int) -> None:
        run.process.send_signal(sig)
        self.publish(container, "kill", signal=str(int(sig)))
        if container.state.status is Status.PAUSED and sig in (signal.SIGKILL, signal.SIGTERM):
            # A frozen task takes its signal only once thawed (Docker unpauses too).
            await trio.to_thread.run_sync(run.cgroup.thaw)
            container.state.status = Status.RUNNING

    async def kill(self, ref: str, sig: str | int | None = None) -> None:
        # As dockerd: the signal is parsed before the container is looked up; a number Linux
        # has no signal for passes that parse and is refused after the lookup.
        try:
            number = cfg.parse_signal(sig, default=signal.SIGKILL)
        except errors.InvalidParameter:
            if not str(sig).strip().isdigit() or int(sig) == 0:
                raise
            number = None
        try:
            container = self.get(ref)
        except errors.NotFound as exc:  # dockerd's kill says what it was doing
            raise errors.NotFound(f"Cannot kill container: {ref}: {exc.message}") from None
        if number is None:
            raise errors.InvalidParameter(
                f"Cannot kill container: {ref}: The linux daemon does not support signal {int(sig)}")
        run = self._supervisors[container.id].run
        if not container.state.status.can_kill() or run is None:
            raise errors.Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        if number == signal.SIGKILL:
            container.manually_stopped = True
            container.save()
        await self._signal(container, run, number)
        if number == signal.SIGKILL:
            await run.exited.wait()

    async def restart(self, ref: str, timeout: int | None = None, stop_signal: str | None = None) -> None:
        container = self.get(ref)
        if container.state.status.can_stop():
            await self.stop(container.id, timeout, stop_signal)
        await self.start(container.id)
        self.publish(container, "restart")

    # --- pause --------------------------------------------------------------------------------
    async def pause(self, ref: str) -> None:
        container = self.get(ref)
        run = self._supervisors[container.id].run
        if container.state.status is Status.PAUSED:
            raise errors.Conflict(f"Container {container.id} is already paused")
        if not container.state.status.can_pause() or run is None:
            raise errors.Conflict(f"Container {container.id} is not running")
        try:
            await trio.to_thread.run_sync(run.cgroup.freeze)
        except (OSError, errors.EngineError):
            sup = self._supervisors.get(container.id)
            if sup is None or sup.run is not run or not container.state.status.can_pause():
                raise errors.Conflict(f"Container {container.id} is not running") from None  # exited meanwhile
            raise
        container.state.status = Status.PAUSED
        health.paused(container)
        container.save()
        self._supervisors[container.id].notify()
        self.publish(container, "pause")

    async def unpause(self, ref: str) -> None:
        container = self.get(ref)
        run = self._supervisors[container.id].run
        if not container.state.status.can_unpause() or run is None:
            raise errors.Conflict(f"Container {container.id} is not paused")
        await trio.to_thread.run_sync(run.cgroup.thaw)
        container.state.status = Status.RUNNING
        container.save()
        self._supervisors[container.id].notify()
        self.publish(container, "unpause")

    @contextlib.asynccontextmanager
    async def held_still(self, container: Container) -> AsyncIterator[None]:
        """The container paused while the body reads its filesystem (`docker commit`'s
        default, as dockerd's: one consistent layer, no process changing it meanwhile); one
        that is not running, or is paused already, stays as it is."""
        paused = False
        if container.state.status is Status.RUNNING:
            try:
                await self.pause(container.id)
                paused = True
            except errors.EngineError:
                pass  # it stopped meanwhile; dockerd too commits what it can when pausing fails
        try:
            yield
        finally:
            if paused:
                with trio.CancelScope(shield=True), contextlib.suppress(errors.EngineError):
                    await self.unpause(container.id)

    # --- wait ---------------------------------------------------------------------------------
    def wait_nowait(self, ref: str, condition: str = "not-running") -> ExitStatus | None:
        """What `wait` would answer at once, or None when it would block (a long poll
        already satisfied is answered as one response, without a task to watch the client)."""
        container = self.get(ref)
        if condition == "not-running" and not container.state.status.is_live():
            return ExitStatus(container.state.exit_code, container.state.error)
        return None

    async def wait(self, ref: str, condition: str = "not-running") -> ExitStatus:
        container = self.get(ref)
        sup = self._supervisors[container.id]
        if condition not in ("not-running", "next-exit", "removed"):
            raise errors.InvalidParameter(f"invalid condition: {condition!r}")
        exits_before = sup.exits
        while True:
            if condition == "removed":
                if container.id not in self._containers:
                    break
            elif condition == "next-exit":
                if sup.exits > exits_before:
                    break
            elif not container.state.status.is_live():
                break
            await sup.changed.wait()
        return ExitStatus(container.state.exit_code, container.state.error)

    # --- remove / rename ----------------------------------------------------------------------
    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        container = self.get(ref)
        status = container.state.status
        if status is Status.REMOVING:
            raise errors.Conflict(f"removal of container {container.id} is already in progress")
        sup = self._supervisors[container.id]
        if sup.removing:
            raise errors.Conflict(f"removal of container {container.id} is already in progress")
        if not status.is_live() and sup.done is not None and not sup.done.is_set():
            if self._should_restart(container, container.state.exit_code):
                # Between an exit and its restart: dockerd already calls this "restarting".
                if not force:
                    raise errors.Conflict(
                        f"You cannot remove a restarting container {container.id}. Stop the container "
                        "before attempting removal or force remove"
                    )
                container.manually_stopped = True  # the supervisor ends instead of restarting
            sup.removing = True  # the supervisor then leaves auto-removal to us
            try:
                await self._wait_previous_run(container)
            except BaseException:
                sup.removing = False
                raise
        if status.is_live():
            if not force:
                verb, advice = ("paused", "Unpause and then stop") if status is Status.PAUSED else ("running", "Stop")
                raise errors.Conflict(
                    f"You cannot remove a {verb} container {container.id}. {advice} the container "
                    "before attempting removal or force remove"
                )
            container.manually_stopped = True
            sup.removing = True
            try:
                await self._terminate(container, signal.SIGKILL, 0)
            except BaseException:
                sup.removing = False
                raise
        sup.removing = True
        sup = self._supervisors[container.id]
        container.state.status = Status.REMOVING
        sup.notify()
        trash = None
        if sup.host_clean and sup.mount_refs == 0:
            # Nothing of a run is left to undo: one rename on the event loop costs less than
            # a thread hop; any surprise (the scratch dir missing…) takes the full path.
            try:
                os.rename(container.directory, trash := self._trash_path(container))
            except OSError:
                trash = None
        if trash is None:
            trash = await trio.to_thread.run_sync(self._detach_files, container)
        if self.networks is not None:
            await self.networks.forget(container)
        await self.volumes.forget(container.id, remove_anonymous=volumes or container.host_config.auto_remove)
        self._containers.pop(container.id, None)
        if self._names.get(container.name) == container.id:
            del self._names[container.name]
        if self.execs is not None:
            self.execs.forget_container(container.id)
        self.publish(container, "destroy")
        sup.notify()
        self._supervisors.pop(container.id, None)
        if trash is not None:
            if self._nursery is not None:
                self._reclaimer.put(container.id, trash)
            else:
                await trio.to_thread.run_sync(_reclaim_now, container.id, trash)

    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        if not new_name:
            raise errors.InvalidParameter("Neither old nor new names may be empty")
        if new_name.lstrip("/") == container.name:
            raise errors.InvalidParameter("Renaming a container with the same name as its current name")
        try:  # dockerd's messages: the new name with its slash, after what rename was doing
            new_name = cfg.validate_name("/" + new_name.lstrip("/"))
            self._check_name_free(new_name)
        except (errors.InvalidParameter, errors.Conflict) as exc:
            raise type(exc)(f"Error when allocating new name: {exc.message}") from None
        old = container.name
        del self._names[old]
        self._names[new_name] = container.id
        container.name = new_name
        container.save()
        self.publish(container, "rename", oldName="/" + old)

    # --- io -----------------------------------------------------------------------------------
    async def update(self, ref: str, resources: cgroups.Resources, restart_policy=None,
                     kernel_memory: int = 0) -> list[str]:
        """docker update (engine/containers/update.py). Returns warnings."""
        from engine.containers.update import update_container

        return await update_container(self, self.get(ref), resources, restart_policy, kernel_memory)

    async def prune(self, filters):
        """docker container prune (engine/containers/prune.py) -> PruneReport."""
        from engine.containers.prune import prune_containers

        return await prune_containers(self, filters)

    async def changes(self, ref: str) -> list:
        """docker diff (engine/containers/changes.py): [Change(path, kind)]."""
        from engine.containers.changes import rootfs_changes

        container = self.get(ref)
        return await trio.to_thread.run_sync(rootfs_changes, container.upper_dir, self.lower_dirs(container))

    def lower_dirs(self, container: Container) -> list[str]:
        """The overlay lowerdirs of the container's rootfs, top first: its image's init layer
        (engine/containers/initlayer.py), then the image's layers. Raises NotFound."""
        return self._init_layers.existing_lower_dirs(self.images.resolve(container.image_id))


    def publish(self, container: Container, action: str, **extra: str) -> None:
        attributes = dict(container.config.labels)
        attributes.update(image=container.config.image, name=container.name)
        attributes.update(extra)
        self.events.publish("container", action, container.id, attributes)


class _IdSource:
    """Container ids as secrets.token_hex(32) makes them (32 bytes of the kernel's CSPRNG), from
    a buffer refilled by one getrandom per `batch` ids: create runs on the event loop, where
    each syscall is also a hand-off of the GIL to a busy worker thread in a burst."""

    def __init__(self, batch: int = 128) -> None:
        self._batch = batch
        self._buffer = b""
        self._at = 0

    def new(self) -> str:
        if self._at >= len(self._buffer):
            self._buffer, self._at = os.urandom(32 * self._batch), 0
        self._at += 32
        return self._buffer[self._at - 32:self._at].hex()
