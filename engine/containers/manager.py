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

import logging
import os
import re
import secrets
import shutil
import signal
import threading
from collections.abc import AsyncIterator

import attrs
import trio

from engine import errors
from engine.containers import config as cfg
from engine.containers import health, names, restore
from engine.containers.hub import STDERR, STDOUT, OutputHub
from engine.containers.pumps import drive
from engine.containers.model import Container, Status, now_ns, rfc3339_ns
from engine.runtime import ContainerProcess, InProcessRuntime, SpawnError, Stdio, cgroups, enlarge_pipe, mount_overlay, unmount

log = logging.getLogger(__name__)

STOP_GRACE_DEFAULT = 10


@attrs.define(eq=False)
class Run:
    """One execution of a container's process, from spawn to reap."""

    process: ContainerProcess
    cgroup: cgroups.CgroupManager
    log: object | None
    stdin: trio.lowlevel.FdStream | None
    started_at_ns: int
    output_fds: list[tuple[int, int]] = attrs.Factory(list)  # (fd, stream id) pumped to log + hub
    exited: trio.Event = attrs.Factory(trio.Event)
    exit_code: int | None = None


@attrs.define(eq=False)
class Supervisor:
    """Runtime companion of a container record: never persisted."""

    hub: OutputHub = attrs.Factory(OutputHub)
    run: Run | None = None
    cancel_scope: trio.CancelScope | None = None
    done: trio.Event | None = None
    exits: int = 0  # exits seen, for wait?condition=next-exit
    changed: trio.Event = attrs.Factory(trio.Event)
    mount_refs: int = 0
    mount_lock: threading.Lock = attrs.Factory(threading.Lock)
    removing: bool = False
    nursery: trio.Nursery | None = None
    detached: bool = False  # the daemon stopped and left this container running (live restore)

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


def resources_from(host: dict) -> cgroups.Resources:
    return cgroups.Resources(
        memory=host.get("Memory") or 0,
        memory_swap=host.get("MemorySwap") or 0,
        memory_reservation=host.get("MemoryReservation") or 0,
        nano_cpus=host.get("NanoCpus") or 0,
        cpu_shares=host.get("CpuShares") or 0,
        cpu_quota=host.get("CpuQuota") or 0,
        cpu_period=host.get("CpuPeriod") or 0,
        cpuset_cpus=host.get("CpusetCpus") or "",
        cpuset_mems=host.get("CpusetMems") or "",
        pids_limit=host.get("PidsLimit") or 0,
        blkio_weight=host.get("BlkioWeight") or 0,
        allow_all_devices=bool(host.get("Privileged")),
    )


class ContainerManager:
    def __init__(self, config, images, events, volumes, runtime=None) -> None:
        self.config = config
        self._detaching = False
        # engine.runtime.Runtime: creates, waits for and re-adopts container processes.
        self.runtime = runtime if runtime is not None else InProcessRuntime()
        self.images = images
        self.events = events
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self._supervisors: dict[str, Supervisor] = {}
        self._nursery: trio.Nursery | None = None
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
            restore.recover, self.config.containers_dir, self.config.cgroup_parent, adopted)
        for container in containers:
            self._containers[container.id] = container
            self._names[container.name] = container.id
            self._supervisors[container.id] = Supervisor()
        await self.volumes.load(set(self._containers))
        resumed = {container.id for container, _ in resume}
        await restore.let_go_unclaimed(
            self.runtime, adopted, resumed,
            lambda cid: self._open_log(self._containers[cid]) if cid in self._containers else None)
        try:
            async with trio.open_nursery() as nursery:
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

    def leaves_containers(self) -> bool:
        """Whether the stopping daemon leaves running containers behind (live restore)."""
        return self._detaching and any(sup.run is not None or sup.detached for sup in self._supervisors.values())

    async def _resume(self, container: Container, entry) -> None:
        """Supervise a container the runtime kept running while no daemon watched it."""
        sup = self._supervisors[container.id]
        sup.mount_refs = 1
        stdin, output_fds = restore.resumed_io(container, entry)
        run = Run(process=entry.process, cgroup=cgroups.for_container(self.config.cgroup_parent, container.id),
                  log=self._open_log(container), stdin=stdin,
                  started_at_ns=container.state.started_at_ns or now_ns(), output_fds=output_fds)
        await self.volumes.mount(container.id)
        if self.networks is not None:
            await self.networks.adopt(container, entry.pid)
        sup.done = trio.Event()
        await self._nursery.start(self._supervise, container, run)

    def _restarts_on_boot(self, container: Container) -> bool:
        policy = container.restart_policy["Name"]
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

    def counts(self) -> dict:
        statuses = [c.state.status for c in self._containers.values()]
        return {
            "Containers": len(statuses),
            "ContainersRunning": statuses.count(Status.RUNNING),
            "ContainersPaused": statuses.count(Status.PAUSED),
            "ContainersStopped": len(statuses) - statuses.count(Status.RUNNING) - statuses.count(Status.PAUSED),
        }

    # --- create -------------------------------------------------------------------------------
    async def create(self, body: dict, name: str | None = None, endpoints: dict | None = None) -> tuple[Container, list[str]]:
        """`endpoints`: network ref → engine.networks.EndpointSettings (the API's typed
        NetworkingConfig)."""
        image_ref = (body or {}).get("Image") if isinstance(body, dict) else None
        if not image_ref:
            raise errors.InvalidParameter("Config cannot be empty in order to create a container")
        image = self.images.resolve(image_ref)
        image_config = image.config.get("config", image.config) if "rootfs" in image.config else image.config
        config, host_config, warnings = cfg.normalize_create(body, image_config or {}, image_ref)
        if name:
            name = cfg.validate_name(name)
            self._check_name_free(name)
        else:
            name = names.generate(lambda n: n in self._names)
        attachments = (self.networks.validate_create(host_config, endpoints or {})
                       if self.networks is not None else [])
        container_id = secrets.token_hex(32)
        command = list(config["Entrypoint"] or []) + list(config["Cmd"] or [])
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
        if not config["Hostname"]:
            config["Hostname"] = container.short_id
        self._names[name] = container_id  # reserve before the first await
        try:
            await trio.to_thread.run_sync(self._create_files, container)
            if self.networks is not None:
                await trio.to_thread.run_sync(self.networks.record, container_id, attachments)
            await self.volumes.prepare(container_id, config, host_config)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.volumes.forget(container_id, remove_anonymous=True)
            del self._names[name]
            shutil.rmtree(container.directory, ignore_errors=True)
            raise
        self._containers[container_id] = container
        self._supervisors[container_id] = Supervisor()
        self.publish(container, "create")
        return container, warnings

    def _check_name_free(self, name: str) -> None:
        if name in self._names:
            raise errors.Conflict(
                f'Conflict. The container name "/{name}" is already in use by container '
                f'"{self._names[name]}". You have to remove (or rename) that container to be able '
                "to reuse that name."
            )

    def _create_files(self, container: Container) -> None:
        """All or nothing: the directory is removed if any step fails."""
        try:
            for path in (container.directory, container.upper_dir, container.work_dir, container.rootfs):
                os.makedirs(path, exist_ok=True)
            host = container.host_config
            for path, content in (
                (container.hostname_path, container.config["Hostname"] + "\n"),
                (container.hosts_path, cfg.hosts_file(container.config["Hostname"], host)),
                (container.resolv_conf_path, cfg.resolv_conf(host)),
            ):
                with open(path, "w") as f:
                    f.write(content)
            if host.get("NetworkMode") == "host":
                shutil.copyfile("/etc/hosts", container.hosts_path)
            container.save()
        except BaseException:
            shutil.rmtree(container.directory, ignore_errors=True)
            raise

    # --- rootfs -------------------------------------------------------------------------------
    def _mount_rootfs(self, container: Container) -> None:
        """Refcounted: a running container holds one, `docker cp` on a stopped one another.
        Runs in worker threads, so the count is guarded by a lock."""
        sup = self._supervisors[container.id]
        with sup.mount_lock:
            if sup.mount_refs == 0:
                image = self.images.resolve(container.image_id)
                mount_overlay(self.images.layer_dirs(image), container.upper_dir, container.work_dir, container.rootfs)
            sup.mount_refs += 1

    def _unmount_rootfs(self, container: Container) -> None:
        sup = self._supervisors[container.id]
        with sup.mount_lock:
            sup.mount_refs = max(sup.mount_refs - 1, 0)
            if sup.mount_refs == 0:
                _unmount_quiet(container.rootfs)

    def rootfs_mounted(self, container: Container) -> "_RootfsRef":
        """Async context manager: the container's rootfs is mounted inside."""
        return _RootfsRef(self, container)

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
            if container.host_config.get("AutoRemove"):
                # As dockerd: a failed start of an auto-remove container removes it (the
                # docker CLI waits for that before it exits).
                with trio.CancelScope(shield=True):
                    await self.remove(container.id, force=True)
            if isinstance(exc, SpawnError):
                raise start_error(exc) from None
            raise

    async def _launch(self, container: Container) -> Run:
        """Mount, cgroup, spawn; every step undone if a later one fails."""
        from engine.containers.runspec import build_runtime_spec, namespaces_for

        host = container.host_config
        cgroup = cgroups.for_container(self.config.cgroup_parent, container.id)
        namespaces = namespaces_for(container, self._running_pid)
        link_env = self.networks.link_env(container) if self.networks is not None else []

        from engine.volumes import copy_up

        def prepare_host():
            self._mount_rootfs(container)
            try:
                workdir = container.config.get("WorkingDir")
                if workdir:
                    _mkdir_in_rootfs(container.rootfs, workdir)
                copy_up(container.rootfs, volume_points)
                cgroup.create(resources_from(host))
                try:
                    return build_runtime_spec(container, cgroup.container_mounts(), namespaces, volume_points,
                                              extra_env=link_env)
                except BaseException:
                    cgroup.destroy()
                    raise
            except BaseException:
                self._unmount_rootfs(container)
                raise

        volume_points = await self.volumes.mount(container.id)
        try:
            spec = await trio.to_thread.run_sync(prepare_host)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.volumes.unmount(container.id)
            raise
        parent_fds: list[int] = []
        child_fds: list[int] = []
        log_driver = None
        try:
            log_driver = self._open_log(container)
            if container.config.get("Tty"):
                stdio = Stdio(tty=True)
            else:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                if self.runtime.live_restore:
                    enlarge_pipe(out_r)
                    enlarge_pipe(err_r)
                parent_fds += [out_r, err_r]
                child_fds += [out_w, err_w]
                in_r = None
                if container.config.get("OpenStdin"):
                    in_r, in_w = os.pipe2(os.O_CLOEXEC)
                    parent_fds.append(in_w)
                    child_fds.append(in_r)
                stdio = Stdio(tty=False, stdin=in_r, stdout=out_w, stderr=err_w)

            async def place(pid: int) -> None:
                await trio.to_thread.run_sync(cgroup.add_process, pid)
                if self.networks is not None:
                    await self.networks.setup(container, pid)

            process = await self.runtime.spawn_container(container.id, spec, stdio, prepare=place)
            try:
                # Output keeps waiting in these while no daemon reads it (live restore).
                await self.runtime.hold(container.id, [process.pty_master] if process.pty_master is not None
                                        else parent_fds[:2])
            except BaseException:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
                process.close()
                if process.pty_master is not None:
                    os.close(process.pty_master)
                raise
        except BaseException:
            for fd in parent_fds:
                os.close(fd)
            with trio.CancelScope(shield=True):
                if log_driver is not None:
                    await log_driver.aclose()
                if self.networks is not None:
                    await self.networks.teardown(container)
                await trio.to_thread.run_sync(self._teardown_host, container, cgroup)
                await self.volumes.unmount(container.id)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        stdin = None
        if process.pty_master is not None:
            if container.config.get("OpenStdin"):
                stdin = trio.lowlevel.FdStream(os.dup(process.pty_master))
        elif container.config.get("OpenStdin"):
            stdin = trio.lowlevel.FdStream(parent_fds[2])
        output_fds = (
            [(process.pty_master, STDOUT)] if process.pty_master is not None
            else [(parent_fds[0], STDOUT), (parent_fds[1], STDERR)]
        )
        return Run(process=process, cgroup=cgroup, log=log_driver, stdin=stdin,
                   started_at_ns=now_ns(), output_fds=output_fds)

    def _open_log(self, container: Container):
        log_config = container.host_config.get("LogConfig") or {}
        if log_config.get("Type") == "none":
            return None
        from engine.containers.logs import JsonFileLogDriver

        return JsonFileLogDriver(container.log_path, dict(log_config.get("Config") or {}))

    def _teardown_host(self, container: Container, cgroup) -> None:
        try:
            cgroup.destroy()
        finally:
            self._unmount_rootfs(container)

    def _running_pid(self, ref: str) -> int:
        other = self.get(ref)
        run = self._supervisors[other.id].run
        if other.state.status is not Status.RUNNING or run is None:
            raise errors.Conflict(f"cannot join network of a non running container: {ref}")
        return run.process.pid

    async def _supervise(self, container: Container, resumed: Run | None = None, *,
                         task_status=trio.TASK_STATUS_IGNORED) -> None:
        """One container's supervisor: run (or resume an adopted run), record the exit, apply
        the restart policy."""
        sup = self._supervisors[container.id]
        first = True
        delay = 0.1
        try:
            with trio.CancelScope() as scope:
                sup.cancel_scope = scope
                while True:
                    if resumed is not None:
                        run, resumed = resumed, None
                        sup.run = run
                        if container.state.status is not Status.PAUSED:
                            container.state.status = Status.RUNNING
                        container.save()
                    else:
                        try:
                            run = await self._launch(container)
                        except BaseException as exc:
                            if first:
                                self._record_start_failure(container, exc)
                                raise
                            self._record_start_failure(container, exc)
                            break
                        sup.run = run
                        st = container.state
                        st.status, st.pid, st.started_at_ns = Status.RUNNING, run.process.pid, run.started_at_ns
                        st.error, st.oom_killed, st.exit_code = "", False, 0
                        container.save()
                        self.publish(container, "start")
                    sup.notify()
                    if first:
                        task_status.started()
                        first = False
                    await self._run_until_exit(container, sup, run)
                    if run.exit_code is None:
                        break  # detached: the container outlives this daemon
                    if not self._should_restart(container, run.exit_code):
                        break
                    ran_ns = container.state.finished_at_ns - run.started_at_ns
                    delay = 0.1 if ran_ns > 10_000_000_000 else min(delay * 2, 60)
                    container.restart_count += 1
                    container.state.status = Status.RESTARTING
                    container.save()
                    sup.notify()
                    await trio.sleep(delay)
        finally:
            sup.cancel_scope = None
            if container.state.status is Status.RESTARTING:
                container.state.status = Status.EXITED
                container.save()
                sup.notify()
            sup.done.set()
        if container.host_config.get("AutoRemove") and not sup.removing and container.id in self._containers:
            with trio.CancelScope(shield=True):
                await self.remove(container.id, force=True)

    def _record_start_failure(self, container: Container, exc: BaseException) -> None:
        if isinstance(exc, SpawnError):
            container.state.exit_code = exc.exit_code
            container.state.error = exc.message
        elif isinstance(exc, errors.EngineError):
            container.state.exit_code = 128
            container.state.error = exc.message
        else:
            return
        self._supervisors[container.id].hub.end_run()
        if container.state.status is Status.RESTARTING:
            container.state.status = Status.EXITED
        container.save()
        self._supervisors[container.id].notify()

    async def _run_until_exit(self, container: Container, sup: Supervisor, run: Run) -> None:
        """Pump output to the log and attach subscribers while waiting for the process."""

        async def sink(stream_id: int, data: bytes) -> None:
            if run.log is not None:
                await run.log.write("stdout" if stream_id == STDOUT else "stderr", data)
            await sup.hub.publish(stream_id, data)

        def hook(nursery):
            sup.nursery = nursery
            if nursery is not None:
                health.watch_run(nursery, self, container, run.process)

        try:
            run.exit_code = await drive(run.process, run.output_fds, sink, nursery_hook=hook,
                                        detached=lambda: self._detaching and self.runtime.live_restore,
                                        teed=self.runtime.live_restore and not container.config.get("Tty"))
        finally:
            with trio.CancelScope(shield=True):
                if run.exit_code is None and self._detaching and self.runtime.live_restore:
                    await self._let_go(sup, run)
                else:
                    if run.exit_code is None:
                        run.exit_code = await run.process.wait()
                    await self._finish_run(container, sup, run)

    async def _let_go(self, sup: Supervisor, run: Run) -> None:
        """Live restore: the daemon stops, the process runs on. Close our ends only (the
        runtime holds its own) and flush the log; nothing on the host is undone."""
        if run.stdin is not None:
            await run.stdin.aclose()
        if run.log is not None:
            await run.log.aclose()
        run.process.close()  # the pumps closed our output ends (pipes or pty master)
        sup.run = None
        sup.detached = True

    async def _finish_run(self, container: Container, sup: Supervisor, run: Run) -> None:
        """Record the exit and wake waiters first, then undo the run's host state: `docker
        wait` answers without waiting for unmounts. Verbs that need the host state gone
        (start, remove) wait for the supervisor's `done` instead."""
        if run.stdin is not None:
            await run.stdin.aclose()
        if run.log is not None:
            await run.log.aclose()
        oom = _oom_killed(run.cgroup)  # a small cgroupfs read; must precede the cgroup's removal
        run.process.close()
        st = container.state
        st.status, st.pid, st.exit_code = Status.EXITED, 0, run.exit_code
        st.finished_at_ns = now_ns()
        st.oom_killed = oom
        sup.run = None
        sup.exits += 1
        run.exited.set()
        container.save()
        await self.runtime.release(container.id, run.process.pid)
        sup.hub.end_run()
        if oom:
            self.publish(container, "oom")
        self.publish(container, "die", exitCode=str(run.exit_code))
        sup.notify()
        await trio.to_thread.run_sync(self._teardown_host, container, run.cgroup)
        if self.networks is not None:
            await self.networks.teardown(container)
        await self.volumes.unmount(container.id)

    async def _wait_previous_run(self, container: Container) -> None:
        """A supervisor still undoing its last run's host state (or auto-removing) holds the
        container until it is done."""
        sup = self._supervisors.get(container.id)
        if sup is not None and sup.done is not None and not sup.done.is_set() and sup.run is None \
                and not container.state.status.is_live():
            await sup.done.wait()

    def _should_restart(self, container: Container, exit_code: int) -> bool:
        if container.manually_stopped:
            return False
        policy = container.restart_policy
        name = policy["Name"]
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and exit_code != 0:
            retries = policy.get("MaximumRetryCount") or 0
            return retries == 0 or container.restart_count < retries
        return False

    # --- stop / kill / restart ---------------------------------------------------------------
    async def stop(self, ref: str, timeout: int | None = None) -> None:
        container = self.get(ref)
        if not container.state.status.can_stop():
            raise errors.NotModified("container already stopped")
        container.manually_stopped = True
        container.save()
        if timeout is None:
            timeout = container.config.get("StopTimeout", STOP_GRACE_DEFAULT)
        stop_signal = cfg.parse_signal(container.config.get("StopSignal"))
        await self._terminate(container, stop_signal, timeout)
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
        if timeout != 0 or stop_signal == signal.SIGKILL:
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
        container = self.get(ref)
        number = cfg.parse_signal(sig, default=signal.SIGKILL)
        run = self._supervisors[container.id].run
        if not container.state.status.can_kill() or run is None:
            raise errors.Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
        if number == signal.SIGKILL:
            container.manually_stopped = True
            container.save()
        await self._signal(container, run, number)
        if number == signal.SIGKILL:
            await run.exited.wait()

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        container = self.get(ref)
        if container.state.status.can_stop():
            await self.stop(container.id, timeout)
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
        await trio.to_thread.run_sync(run.cgroup.freeze)
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

    # --- wait ---------------------------------------------------------------------------------
    async def wait(self, ref: str, condition: str = "not-running") -> dict:
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
        error = {"Message": container.state.error} if container.state.error else None
        return {"StatusCode": container.state.exit_code, "Error": error}

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
                verb = "paused" if status is Status.PAUSED else "running"
                raise errors.Conflict(
                    f"You cannot remove a {verb} container {container.id}. Stop the container "
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
        await trio.to_thread.run_sync(self._remove_files, container)
        if self.networks is not None:
            await self.networks.forget(container)
        await self.volumes.forget(container.id, remove_anonymous=volumes or bool(container.host_config.get("AutoRemove")))
        self._containers.pop(container.id, None)
        if self._names.get(container.name) == container.id:
            del self._names[container.name]
        if self.execs is not None:
            self.execs.forget_container(container.id)
        self.publish(container, "destroy")
        sup.notify()
        self._supervisors.pop(container.id, None)

    def _remove_files(self, container: Container) -> None:
        _unmount_quiet(container.rootfs)
        cgroups.for_container(self.config.cgroup_parent, container.id).destroy()
        shutil.rmtree(container.directory, ignore_errors=True)

    async def rename(self, ref: str, new_name: str) -> None:
        container = self.get(ref)
        if not new_name:
            raise errors.InvalidParameter("Neither old nor new names may be empty")
        new_name = cfg.validate_name(new_name)
        if new_name == container.name:
            raise errors.InvalidParameter("Renaming a container with the same name as its current name")
        self._check_name_free(new_name)
        old = container.name
        del self._names[old]
        self._names[new_name] = container.id
        container.name = new_name
        container.save()
        self.publish(container, "rename", oldName="/" + old)

    # --- io -----------------------------------------------------------------------------------
    async def update(self, ref: str, resources: cgroups.Resources, restart_policy=None) -> list[str]:
        """docker update (engine/containers/update.py). Returns warnings."""
        from engine.containers.update import update_container

        return await update_container(self, self.get(ref), resources, restart_policy)

    async def prune(self, filters):
        """docker container prune (engine/containers/prune.py) -> PruneReport."""
        from engine.containers.prune import prune_containers

        return await prune_containers(self, filters)

    async def changes(self, ref: str) -> list:
        """docker diff (engine/containers/changes.py): [Change(path, kind)]."""
        from engine.containers.changes import rootfs_changes

        container = self.get(ref)
        lowers = self.images.layer_dirs(self.images.resolve(container.image_id))
        return await trio.to_thread.run_sync(rootfs_changes, container.upper_dir, lowers)

    def subscribe_output(self, container: Container) -> trio.MemoryReceiveChannel:
        return self._supervisors[container.id].hub.subscribe()

    async def write_stdin(self, container: Container, chunks: AsyncIterator[bytes], close_on_eof: bool) -> None:
        """Feed client bytes to the container's stdin (waiting for the run to start)."""
        sup = self._supervisors.get(container.id)
        while sup is not None and sup.run is None and container.state.status in (Status.CREATED, Status.RESTARTING):
            await sup.changed.wait()
        run = sup.run if sup else None
        if run is None or run.stdin is None:
            async for _ in chunks:
                pass
            return
        try:
            async for data in chunks:
                await run.stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        if close_on_eof and not container.config.get("Tty"):
            await run.stdin.aclose()
        # With a TTY, dockerd leaves the container's stdin open when the client's ends (a
        # detach, a closed CLI): the process goes on.

    async def resize(self, ref: str, height: int, width: int) -> None:
        from engine.runtime import resize

        container = self.get(ref)
        run = self._supervisors[container.id].run
        if run is None:
            raise errors.Conflict(f"Container {container.id} is not running")
        if run.process.pty_master is not None:
            resize(run.process.pty_master, height, width)

    def log_reader(self, container: Container):
        """The live run's log driver (follow works), or a read-only one on the file."""
        run = self._supervisors[container.id].run
        if run is not None and run.log is not None:
            return run.log, True
        from engine.containers.logs import JsonFileLogDriver

        return JsonFileLogDriver.reader(container.log_path), False

    async def top(self, ref: str, ps_args: str = "-ef") -> dict:
        from engine.containers.top import top

        container = self.get(ref)
        run = self._supervisors[container.id].run
        if run is None or not container.state.status.is_live():
            raise errors.Conflict(f"Container {container.id} is not running")
        pids = await trio.to_thread.run_sync(run.cgroup.pids)
        return await top(pids, ps_args or "-ef")

    async def stats_sample(self, container: Container) -> dict:
        run = self._supervisors[container.id].run
        sample = {"read": rfc3339_ns(now_ns()), "name": "/" + container.name, "id": container.id}
        if run is None:
            sample.update({
                "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
                "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                "memory_stats": {},
            })
            return sample
        from engine.containers.stats import network_stats

        own_netns = (container.host_config.get("NetworkMode") or "default") != "host"
        pid = run.process.pid

        def read() -> tuple[dict, dict]:
            return run.cgroup.stats(), network_stats(pid) if own_netns else {}

        cgroup_stats, networks = await trio.to_thread.run_sync(read)
        sample.update(cgroup_stats)
        if networks:  # dockerd leaves the block out when there is no interface but lo
            sample["networks"] = networks
        sample.setdefault("num_procs", 0)
        sample.setdefault("storage_stats", {})
        return sample

    # --- events -------------------------------------------------------------------------------
    def publish(self, container: Container, action: str, **extra: str) -> None:
        attributes = dict(container.config.get("Labels") or {})
        attributes.update(image=container.config.get("Image", ""), name=container.name)
        attributes.update(extra)
        self.events.publish("container", action, container.id, attributes)


def start_error(exc: SpawnError) -> errors.EngineError:
    """Docker's wording, which the docker CLI parses: "executable file not found" and
    "no such file or directory" become its exit 127, "permission denied" 126."""
    message = (
        "failed to create task for container: OCI runtime create failed: "
        f"unable to start container process: {exc.message}: unknown"
    )
    if exc.exit_code in (126, 127):
        return errors.InvalidParameter(message)
    return errors.SystemError_(message)


class _RootfsRef:
    def __init__(self, manager: ContainerManager, container: Container) -> None:
        self.manager, self.container = manager, container

    async def __aenter__(self) -> str:
        await trio.to_thread.run_sync(self.manager._mount_rootfs, self.container)
        return self.container.rootfs

    async def __aexit__(self, *exc) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.manager._unmount_rootfs, self.container)


def _oom_killed(cgroup) -> bool:
    try:
        return cgroup.oom_kill_count() > 0
    except (OSError, errors.EngineError):
        return False


def _unmount_quiet(path: str) -> None:
    try:
        unmount(path)
    except OSError:
        pass


def _mkdir_in_rootfs(rootfs: str, path: str) -> None:
    """Docker creates a missing WorkingDir. Resolve inside the rootfs so a symlink in the image
    cannot make us create directories on the host."""
    current = rootfs
    for part in [p for p in path.split("/") if p and p != "."]:
        if part == "..":
            current = os.path.dirname(current) if current != rootfs else rootfs
            continue
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            base = rootfs if target.startswith("/") else current
            candidate = os.path.normpath(os.path.join(base, target.lstrip("/")))
            if not (candidate + "/").startswith(rootfs.rstrip("/") + "/"):
                candidate = rootfs
        if not os.path.exists(candidate):
            os.mkdir(candidate, 0o755)
        current = candidate
