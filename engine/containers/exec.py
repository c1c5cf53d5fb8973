"""docker exec: processes joined to a running container's namespaces and cgroup.

An exec's process is the daemon's child inside the container's pid namespace, so it dies with
the container's pid 1; its output goes to the attached client only (not the container log)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Awaitable, Callable

import attrs
import trio

from engine import errors
from engine.containers import config as cfg
from engine.containers.hub import STDERR, STDOUT
from engine.containers.model import Status
from engine.containers.pumps import drive
from engine.containers.spec import ExecConfig
from engine.runtime import ProcessSpec, SpawnError, Stdio, resolve_capabilities, seccomp_program

log = logging.getLogger(__name__)

#: sink(stream_id, data) for attached output; None for a detached exec.
OutputSink = Callable[[int, bytes], Awaitable[None]]


@attrs.define(eq=False)
class ExecInstance:
    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    pty_master: int | None = None
    done: trio.Event = attrs.Factory(trio.Event)


class ExecManager:
    def __init__(self, containers) -> None:
        self.containers = containers
        self._execs: dict[str, ExecInstance] = {}
        containers.execs = self

    def get(self, exec_id: str) -> ExecInstance:
        try:
            return self._execs[exec_id]
        except KeyError:
            raise errors.no_such_exec(exec_id) from None

    def forget(self, exec_id: str) -> None:
        """Drop a finished exec (healthcheck probes: one per interval must not pile up)."""
        instance = self._execs.pop(exec_id, None)
        if instance is not None:
            self._unlist(instance)

    def _unlist(self, instance: ExecInstance) -> None:
        """Take an exec that ended (or could not start) off its container's ExecIDs, as dockerd
        does; it stays inspectable (its exit code) until the container goes."""
        try:
            container = self.containers.get(instance.container_id)
        except errors.NotFound:
            return
        if instance.id in container.exec_ids:
            container.exec_ids.remove(instance.id)

    def forget_container(self, container_id: str) -> None:
        for exec_id in [e.id for e in self._execs.values() if e.container_id == container_id]:
            del self._execs[exec_id]

    def create(self, ref: str, config: ExecConfig) -> ExecInstance:
        container = self.containers.get(ref)
        if container.state.status is Status.PAUSED:
            raise errors.Conflict(f"Container {ref} is paused, unpause the container before exec")
        if container.state.status is not Status.RUNNING:
            raise errors.Conflict(f"Container {container.id} is not running")
        if not config.cmd:
            raise errors.InvalidParameter("No exec command specified")
        instance = ExecInstance(id=secrets.token_hex(32), container_id=container.id, config=config)
        self._execs[instance.id] = instance
        container.exec_ids.append(instance.id)
        self.containers.publish(container, "exec_create: " + _shown(config.cmd), execID=instance.id)
        return instance

    def _process_spec(self, container, instance: ExecInstance, linked: list[str]) -> ProcessSpec:
        """Reads the container's /etc/passwd (for -u name): from a worker thread. The env is
        dockerd's: the container's own (with the exec's TTY) with the exec's Env over it."""
        conf, host = instance.config, container.host_config
        hostname = container.config.hostname or container.short_id
        user = cfg.resolve_user(container.rootfs, conf.user or container.config.user, host.group_add)
        base = cfg.process_env(container.config.env, hostname, conf.tty, linked)
        env = cfg.with_home(cfg.replace_or_append(base, conf.env), user)
        privileged = conf.privileged or host.privileged
        cap_add, cap_drop = host.cap_add or (), host.cap_drop or ()
        return ProcessSpec(
            args=list(conf.cmd),
            env=env,
            cwd=conf.working_dir or container.config.working_dir or "/",
            uid=user.uid,
            gid=user.gid,
            additional_gids=user.groups,
            capabilities=tuple(resolve_capabilities(cap_add, cap_drop, privileged)),
            rlimits=cfg.rlimits(host, self.containers.config.default_ulimits),
            tty=conf.tty,
            # docker exec runs under the container's profile (compiled for the container's caps).
            seccomp_bpf=seccomp_program(host.security_opt, host.privileged,
                                        resolve_capabilities(cap_add, cap_drop, host.privileged),
                                        self.containers.config.seccomp_profile),
            # runc gives an exec the container's OomScoreAdj (not the daemon's score).
            oom_score_adj=host.oom_score_adj,
            # dockerd starts an exec from the container's process spec: its no_new_privs too.
            no_new_privileges=cfg.no_new_privileges(host.security_opt, self.containers.config.no_new_privileges),
        )

    def check_startable(self, exec_id: str):
        """(exec, container, run) when the exec may start now; the Docker error otherwise."""
        instance = self.get(exec_id)
        if instance.started:
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
        container = self.containers.get(instance.container_id)
        run = self.containers.supervisor(container).run
        if container.state.status is not Status.RUNNING or run is None:
            raise errors.Conflict(f"Container {container.id} is not running")
        return instance, container, run

    async def start(
        self,
        exec_id: str,
        *,
        sink: OutputSink | None,
        stdin_chunks=None,
        tty: bool | None = None,
    ) -> int:
        """Run the exec to completion, pumping output to `sink` (attached) — or, when `sink` is
        None, start it in the container's supervisor nursery and return at once."""
        instance, container, run = self.check_startable(exec_id)
        sup = self.containers.supervisor(container)
        instance.started = True
        if tty is not None:
            instance.config = attrs.evolve(instance.config, tty=tty)
        networks = self.containers.networks
        linked = networks.link_env(container) if networks is not None else []
        try:
            process_spec = await trio.to_thread.run_sync(self._process_spec, container, instance, linked)
        except errors.EngineError:  # e.g. an unknown user: the exec never ran
            self._never_started(instance)
            raise
        except Exception as exc:  # a bug: the exec never ran either, and the client is told
            log.exception("exec %s: building its process failed", exec_id)
            self._never_started(instance)
            raise errors.SystemError_(f"exec failed: {exc}") from exc

        parent_fds, child_fds = [], []
        if process_spec.tty:
            stdio = Stdio(tty=True)
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            in_r = None
            in_w = None
            if instance.config.attach_stdin and stdin_chunks is not None:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                child_fds.append(in_r)
            parent_fds += [out_r, err_r] + ([in_w] if in_w is not None else [])
            child_fds += [out_w, err_w]
            stdio = Stdio(tty=False, stdin=in_r, stdout=out_w, stderr=err_w)

        async def place(pid: int) -> None:
            await trio.to_thread.run_sync(run.cgroup.add_process, pid)

        try:
            process = await self.containers.runtime.spawn_exec(container.id, run.process.pid, process_spec, stdio,
                                                              prepare=place)
        except SpawnError as exc:
            for fd in parent_fds:
                os.close(fd)
            self._never_started(instance)
            message = f"OCI runtime exec failed: exec failed: unable to start container process: {exc.message}: unknown"
            raise (errors.InvalidParameter if exc.exit_code in (126, 127) else errors.SystemError_)(message) from None
        except BaseException:
            for fd in parent_fds:
                os.close(fd)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        instance.pid = process.pid
        instance.running = True
        instance.pty_master = process.pty_master
        self.containers.publish(container, "exec_start: " + _shown(instance.config.cmd), execID=instance.id)

        if process.pty_master is not None:
            outputs = [(process.pty_master, STDOUT)]
            stdin_fd = os.dup(process.pty_master) if stdin_chunks is not None else None
        else:
            outputs = [(parent_fds[0], STDOUT), (parent_fds[1], STDERR)]
            stdin_fd = parent_fds[2] if len(parent_fds) > 2 else None

        # A TTY's stdin stays open at the client's EOF (a detach), as in dockerd.
        stdin = (stdin_fd, stdin_chunks, None) if stdin_fd is not None else None

        async def body() -> int:
            try:
                return await drive(process, outputs, sink, stdin)
            finally:
                process.close()

        async def finish(code: int) -> None:
            instance.exit_code = code
            instance.running = False
            self._unlist(instance)
            instance.done.set()
            self.containers.publish(container, "exec_die", execID=instance.id, exitCode=str(code))

        if sink is None:
            async def detached():
                await finish(await body())

            if sup.nursery is None:
                raise errors.Conflict(f"Container {container.id} is not running")
            sup.nursery.start_soon(detached)
            return 0
        code = await body()
        await finish(code)
        return code

    def _never_started(self, instance: ExecInstance) -> None:
        """dockerd records 126 for any exec that failed to start (docker exec exits with it)."""
        instance.exit_code = 126
        self._unlist(instance)
        instance.done.set()

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        from engine.runtime import resize

        instance = self.get(exec_id)
        if instance.pty_master is None or not instance.running:
            raise errors.Conflict(f"Exec {exec_id} is not running with a TTY")
        resize(instance.pty_master, height, width)


def _shown(cmd) -> str:
    """An exec's command in its events as dockerd shows it: the program, a space, the
    arguments (so `exec_create: true ` for one without arguments)."""
    return f"{cmd[0]} {' '.join(cmd[1:])}"
