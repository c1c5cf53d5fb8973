"""Launching a container's process: host state (rootfs, cgroup, volumes, network, log) and
the runtime's spawn, all undone on failure."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os

import attrs
import trio

from engine import errors
from engine.containers import blkio, devices
from engine.containers.cgroupparent import cgroup_of
from engine.containers.config import resolve_user_from
from engine.containers.hub import STDERR, STDOUT
from engine.containers.model import Container, Status, now_ns
from engine.containers.pumps import SpillSource
from engine.containers.spec import HostConfig
from engine.containers.supervision import Run, remove_output_files
from engine.runtime import (HeldOutput, SpawnError, Stdio, cgroups, enlarge_pipe, hostops, mkdir_in_root, mount_shm,
                            unmount)
from engine.runtime.seccomp import reads_a_profile_file

log = logging.getLogger(__name__)


def resources_from(host: HostConfig, device_rules=(), blkio_devices=None) -> cgroups.Resources:
    """The cgroup limits of a HostConfig; `device_rules` allow the --device nodes (resolved at
    start by engine.containers.devices) and the --device-cgroup-rule ones; `blkio_devices`
    the per-device I/O limits (engine.containers.blkio.resolve, at start)."""
    res = host.resources
    return cgroups.Resources(
        memory_swappiness=res.memory_swappiness,
        oom_kill_disable=res.oom_kill_disable,
        **(blkio_devices or {}),
        memory=res.memory,
        memory_swap=res.memory_swap,
        memory_reservation=res.memory_reservation,
        nano_cpus=res.nano_cpus,
        cpu_shares=res.cpu_shares,
        cpu_quota=res.cpu_quota,
        cpu_period=res.cpu_period,
        cpu_realtime_period=res.cpu_realtime_period,
        cpu_realtime_runtime=res.cpu_realtime_runtime,
        cpuset_cpus=res.cpuset_cpus,
        cpuset_mems=res.cpuset_mems,
        pids_limit=res.pids_limit or 0,
        blkio_weight=res.blkio_weight,
        allow_all_devices=host.privileged,
        device_rules=device_rules,
    )


def open_spill(runtime, container: Container, pid: int, log_driver,
               logged: dict[str, int] | None = None, stale: bool = True) -> SpillSource:
    """The run's spilled output, and its log journaled against it (engine/containers/journal.py).
    `stale` False: no earlier run left output files in the directory (Supervisor.output_clean)."""
    from engine.containers.journal import Positions, positions_path
    from engine.runtime.spill import spill_path

    tty = container.config.tty
    resumed = logged is not None
    logged = logged or {"stdout": 0, "stderr": 0}
    source = SpillSource(runtime, container.id, pid, spill_path(container.directory, pid),
                         (STDOUT,) if tty else (STDOUT, STDERR),
                         fed={STDOUT: logged["stdout"], STDERR: logged["stderr"]})
    if log_driver is not None:
        log_driver.journal(Positions(positions_path(container.directory, pid), fresh=not resumed, stale=stale),
                           logged)
        source.durable = lambda stream_id: log_driver.logged("stdout" if stream_id == STDOUT else "stderr")
    return source


class Launching:
    """ContainerManager's launch of one run (mixed into it): rootfs, volumes, cgroup, log,
    stdio, network and spawn, every step undone if a later one fails."""

    async def _launch(self, container: Container) -> Run:
        """Mount, cgroup, spawn: one exit stack undoes every step done if a later one fails."""
        from engine.containers.runspec import build_runtime_spec, namespaces_for
        from engine.volumes import copy_up

        host = container.host_config
        if self.networks is not None:
            await self.networks.resolve(container)  # before anything is made: a 404 leaves nothing
        cgroup = cgroup_of(container, self.config.cgroup_parent)
        namespaces = namespaces_for(container, self._namespace_donor)
        shm_source = self._shm_source(container)
        link_env = self.networks.link_env(container) if self.networks is not None else []

        def runtime_spec(volume_points=(), device_nodes=(), user=None):
            spec = build_runtime_spec(container, cgroup.container_mounts("cgroup" in namespaces), namespaces,
                                      volume_points, extra_env=link_env, devices=device_nodes,
                                      shm_source=shm_source, user=user,
                                      daemon=self.config)
            return attrs.evolve(spec, cgroup_tasks=cgroup.self_join_files())

        def prepare_host(volume_points):
            # One thread hop for the whole host side (start is the hot path); its own undo.
            with contextlib.ExitStack() as undo_host:
                self._mount_rootfs(container)
                undo_host.callback(self._unmount_rootfs, container)
                workdir = container.config.working_dir
                if workdir:
                    mkdir_in_root(container.rootfs, workdir)
                copy_up(container.rootfs, volume_points)
                if host.ipc_mode == "shareable":
                    os.makedirs(container.shm_path, exist_ok=True)
                    mount_shm(container.shm_path, host.shm_bytes)
                    undo_host.callback(unmount, container.shm_path)
                device_nodes, device_rules = devices.resolve(host)
                cgroup.create(resources_from(host, device_rules, blkio.resolve(host.resources)))
                undo_host.callback(cgroup.destroy)
                spec = runtime_spec(volume_points, device_nodes)
                undo_host.pop_all()
                return spec

        tty = container.config.tty
        open_stdin = container.config.open_stdin
        sup = self._supervisors[container.id]
        sup.host_clean = False
        stale_output = not sup.output_clean
        sup.output_clean = False  # this run's files may come from the spawn on
        async with contextlib.AsyncExitStack() as undo:
            volume_points = await self.volumes.mount(container.id)
            _undo(undo, "unmounting volumes", self.volumes.unmount, container.id)
            databases = None if volume_points else await self._prepare_host_natively(container, cgroup)
            if databases is not None:
                _undo(undo, "removing the rootfs mount and cgroup", self._undo_host, container, cgroup)
                passwd, group = databases
                spec = runtime_spec(user=resolve_user_from(passwd, group, container.config.user, host.group_add))
            else:
                spec = await trio.to_thread.run_sync(prepare_host, volume_points)
                _undo(undo, "removing the rootfs mount and cgroup", self._undo_host, container, cgroup)
            log_driver = self._open_log(container)
            if log_driver is not None:
                _undo(undo, "closing the log", log_driver.aclose)
            parent_fds: list[int] = []
            _undo(undo, "closing output pipes", lambda: [os.close(fd) for fd in parent_fds])
            # A runtime that spills makes a child's stdout and stderr pipes itself (no tty) and
            # reads them from the spawn on: none to make, pass and close here.
            runtime_pipes = self.runtime.spills and not tty
            in_w = None
            with contextlib.ExitStack() as child_ends:  # the child's ends: ours to close either way
                if tty:
                    stdio = Stdio(tty=True)
                else:
                    out_w = err_w = None
                    if not runtime_pipes:
                        out_r, out_w = os.pipe2(os.O_CLOEXEC)
                        parent_fds.append(out_r)
                        child_ends.callback(os.close, out_w)
                        err_r, err_w = os.pipe2(os.O_CLOEXEC)
                        parent_fds.append(err_r)
                        child_ends.callback(os.close, err_w)
                        if self.runtime.live_restore:
                            enlarge_pipe(out_r)
                            enlarge_pipe(err_r)
                    in_r = None
                    if open_stdin:
                        in_r, in_w = os.pipe2(os.O_CLOEXEC)
                        parent_fds.append(in_w)
                        child_ends.callback(os.close, in_r)
                    stdio = Stdio(tty=False, stdin=in_r, stdout=out_w, stderr=err_w)

                async def place(pid: int) -> None:
                    if not spec.cgroup_tasks:  # else the child joins them itself
                        await trio.to_thread.run_sync(cgroup.add_process, pid)
                    if self.networks is not None:
                        await self.networks.setup(container, pid)

                if self.networks is not None:  # setup happens inside the spawn; teardown is idempotent
                    _undo(undo, "releasing the network", self.networks.teardown, container)
                # Nothing to place (the child joins its cgroups itself, no network to join):
                # no prepare, so the runtime may let the child go at once (one round trip).
                attached = self.networks is not None and bool(self.networks.attachments(container.id))
                needs_place = not spec.cgroup_tasks or attached
                # The spawner reads the output from the spawn on, into the run's spill file
                # (engine/runtime/spill.py); the log records what it holds of it. Pipes are
                # made by it at the spawn, a pty master (made by the child) is handed over after.
                held = HeldOutput((), container.directory) if runtime_pipes else None
                process = await self.runtime.spawn_container(container.id, spec, stdio,
                                                             prepare=place if needs_place else None, held=held)
            _undo(undo, "ending the process", _end_process, process, container)
            if self.runtime.spills:
                spill = open_spill(self.runtime, container, process.pid, log_driver, stale=stale_output)
                spill.armed = held is not None
                if held is None:
                    await self.runtime.hold(container.id, [process.pty_master], pid=process.pid, spill=spill.path)
            else:
                spill = None
                outputs = [process.pty_master] if process.pty_master is not None else parent_fds[:2]
                await self.runtime.hold(container.id, outputs)
            undo.pop_all()
        stdin = None
        if process.pty_master is not None:
            if open_stdin:
                stdin = trio.lowlevel.FdStream(os.dup(process.pty_master))
        elif open_stdin:
            stdin = trio.lowlevel.FdStream(in_w)
        if spill is not None:
            output_fds = []
        else:
            output_fds = (
                [(process.pty_master, STDOUT)] if process.pty_master is not None
                else [(parent_fds[0], STDOUT), (parent_fds[1], STDERR)]
            )
        return Run(process=process, cgroup=cgroup, log=log_driver, stdin=stdin,
                   started_at_ns=now_ns(), output_fds=output_fds, spill=spill)

    def _namespace_donor(self, kind: str, ref: str) -> int:
        """The pid of the running container whose `kind` ("network", "pid", "ipc") namespace
        a container joins (NetworkMode/PidMode/IpcMode "container:<ref>"), with dockerd's
        refusals."""
        try:
            donor = self.get(ref)
        except errors.NotFound as exc:
            what = {"network": "cannot join network of a non running container", "pid": "cannot join PID of a "
                    "non running container", "ipc": "can't join IPC of container"}[kind]
            raise errors.NotFound(f"{what}: {ref}: {exc.message}" if kind != "ipc" else
                                  f"{what} {ref}: {exc.message}") from None
        run = self._supervisors[donor.id].run
        ipc = f"can't join IPC of container {donor.id}: " if kind == "ipc" else ""
        if donor.state.status is not Status.RUNNING or run is None:
            if kind == "network":
                raise errors.Conflict(f"cannot join network of a non running container: {ref}")
            raise errors.SystemError_(f"{ipc}container {donor.id} is not running")
        if ipc and donor.host_config.ipc_mode not in ("shareable", "host"):
            raise errors.SystemError_(f"{ipc}non-shareable IPC (hint: use IpcMode:shareable for the donor container)")
        return run.process.pid

    def _open_log(self, container: Container):
        log_config = container.host_config.log_config
        if log_config.type == "none":
            return None
        from engine.containers.logs import JsonFileLogDriver, extra_attributes

        options = dict(log_config.options)
        return JsonFileLogDriver(container.log_path, options,
                                 extra_attributes(options, container.config.labels, container.config.env))

    async def _prepare_host_natively(self, container: Container, cgroup) -> tuple[bytes | None, bytes | None] | None:
        """prepare_host's work for a start that needs only the rootfs mounted (unless a
        `docker cp` holds it mounted) and plain cgroups, as one list of host operations
        (engine.runtime.hostops: no worker thread), which also reads the container's
        /etc/passwd and /etc/group: their bytes (None: unreadable), and makes a missing
        WorkingDir. None when the start needs more (device nodes to make, binds, a shareable
        /dev/shm, limits to write, a seccomp profile to read) or a step failed (undone; the
        worker-thread path then runs and reports it)."""
        host = container.host_config
        if (host.ipc_mode == "shareable" or host.devices or host.privileged
                or host.binds or host.mounts or any(getattr(host.resources, name) for name in blkio.FIELDS)
                or reads_a_profile_file(host.security_opt)):
            return None
        ops = cgroup.create_ops(resources_from(host, devices.resolve(host)[1]))
        if ops is None:
            return None
        sup = self._supervisors[container.id]
        if not sup.mount_lock.acquire(blocking=False):  # a worker thread (cp) is mounting it
            return None
        try:
            mount = sup.mount_refs == 0
            if mount:
                lowers = self._init_layers.ready_lower_dirs(self.images.resolve(container.image_id))
                if lowers is None:
                    return None
                ops.insert(0, hostops.MountOverlay(container.rootfs, container.upper_dir, container.work_dir,
                                                   tuple(lowers)))
            if container.config.working_dir:
                ops.append(hostops.MkdirInRoot(container.rootfs, container.config.working_dir))
            rootfs = container.rootfs
            try:
                passwd, group = await hostops.run(
                    [*ops, hostops.Read(rootfs, "etc/passwd"), hostops.Read(rootfs, "etc/group")])
            except OSError as exc:
                log.debug("container %s: host set-up as host operations: %s; in a worker thread", container.short_id,
                          exc)
                with contextlib.suppress(OSError):
                    await hostops.run([*cgroup.destroy_ops(), *([hostops.Unmount(container.rootfs)] if mount else [])])
                return None
            sup.host_clean = False
            sup.mount_refs += 1
            return passwd, group
        finally:
            sup.mount_lock.release()

    async def _undo_host(self, container: Container, cgroup) -> None:
        """_teardown_host as host operations (no worker thread) when the cgroups are plain
        and empty; else, or when that fails (a task still leaving), in a worker thread."""
        sup = self._supervisors[container.id]
        ops = cgroup.destroy_ops()
        if ops is not None and container.host_config.ipc_mode != "shareable" and sup.mount_lock.acquire(blocking=False):
            try:
                last = sup.mount_refs <= 1
                try:
                    await hostops.run([*ops, *([hostops.Unmount(container.rootfs)] if last else [])])
                except OSError:
                    pass
                else:
                    sup.mount_refs = max(sup.mount_refs - 1, 0)
                    return
            finally:
                sup.mount_lock.release()
        await trio.to_thread.run_sync(self._teardown_host, container, cgroup)

    def _teardown_host(self, container: Container, cgroup) -> None:
        try:
            cgroup.destroy()
        finally:
            if container.host_config.ipc_mode == "shareable":
                unmount(container.shm_path)
            self._unmount_rootfs(container)

    def _shm_source(self, container: Container) -> str | None:
        """The host-side /dev/shm the container binds in (runspec._shm_mount), if any."""
        mode = container.host_config.ipc_mode
        if mode.startswith("container:"):  # the donor was found shareable or host (_namespace_donor)
            donor = self.get(mode.split(":", 1)[1])
            mode, container = donor.host_config.ipc_mode, donor
        return {"host": "/dev/shm", "shareable": container.shm_path}.get(mode)


def _undo(stack: contextlib.AsyncExitStack, what: str, fn, *args) -> None:
    """Push one undo step of a launch: shielded (the launch may be cancelled) and logged, not
    raised, so that a failing undo never hides why the start failed nor skips the others."""
    async def step() -> None:
        with trio.CancelScope(shield=True):
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - reported; the start's own error goes on
                log.exception("after a failed start of a container: %s failed", what)

    stack.push_async_callback(step)


async def _end_process(process, container: Container) -> None:
    """A spawned process whose start could not be completed: killed, reaped, its files gone."""
    process.kill()
    await process.wait()
    process.close()
    remove_output_files(container.directory, process.pid)
    if process.pty_master is not None:
        os.close(process.pty_master)


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
