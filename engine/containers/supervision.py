"""One supervisor task tree per live container: a Run (one execution, spawn to reap), the
Supervisor beside each record, and the supervising loop of ContainerManager."""

from __future__ import annotations

import logging
import os
import threading

import attrs
import trio

from engine import errors
from engine.containers import health
from engine.containers.hub import STDOUT, OutputHub
from engine.containers.pumps import SpillSource, drive
from engine.containers.model import Container, Status, now_ns
from engine.runtime import ContainerProcess, SpawnError, cgroups

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class Run:
    """One execution of a container's process, from spawn to reap."""

    process: ContainerProcess
    cgroup: cgroups.CgroupManager
    log: object | None
    stdin: trio.lowlevel.FdStream | None
    started_at_ns: int
    output_fds: list[tuple[int, int]] = attrs.Factory(list)  # (fd, stream id) pumped to log + hub
    spill: SpillSource | None = None  # or the output the spawner spills (engine/runtime/spill.py)
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
    # Nothing of a run is left on the host (no rootfs mount, no cgroup): true from create and
    # after a run's teardown succeeded, false from a launch or a mount on. `rm` then only
    # moves the directory; when unsure (a restored container, a failed teardown) it undoes all.
    host_clean: bool = False
    # No run's spill or positions file is in the container's directory (engine/containers/
    # journal.py): true from create, after startup's cleanup and once a run's files are gone,
    # so a new run need not remove a file an older run with the same pid left.
    output_clean: bool = False

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


def _close_pty(run: Run) -> None:
    """A spilled run's pty master is ours for stdin and resizes only (no pump closes it)."""
    if run.spill is not None and run.process.pty_master is not None:
        os.close(run.process.pty_master)
        run.process.pty_master = None


def remove_output_files(directory: str, pid: int) -> None:
    """A finished run's spill and log positions (its output is in the log)."""
    from engine.containers.journal import positions_path
    from engine.runtime.spill import spill_path

    for path in (spill_path(directory, pid), positions_path(directory, pid)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Supervising:
    """ContainerManager's supervisor task tree (mixed into it): run or resume a container's
    process, pump its output, record its exit, apply the restart policy."""

    async def _supervise(self, container: Container, resumed: Run | None = None, *,
                         task_status=trio.TASK_STATUS_IGNORED) -> None:
        """One container's supervisor: run (or resume an adopted run), record the exit, apply
        the restart policy."""
        sup = self._supervisors[container.id]
        first = True
        delay = 0.0
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
                    delay = next_restart_delay(delay, ran_ns)
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
        if container.host_config.auto_remove and not sup.removing and container.id in self._containers:
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

        async def sink(stream_id: int, data: bytes, when_ns: int | None = None, offset: int | None = None) -> None:
            if run.log is not None:
                await run.log.write("stdout" if stream_id == STDOUT else "stderr", data, when_ns, offset)
            await sup.hub.publish(stream_id, data)

        def hook(nursery):
            sup.nursery = nursery
            if nursery is not None:
                health.watch_run(nursery, self, container, run.process)

        try:
            run.exit_code = await drive(run.process, run.output_fds, sink, nursery_hook=hook,
                                        detached=lambda: self._detaching and self.runtime.live_restore,
                                        spill=run.spill)
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
        _close_pty(run)
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
        _close_pty(run)
        st = container.state
        st.status, st.pid, st.exit_code = Status.EXITED, 0, run.exit_code
        st.finished_at_ns = now_ns()
        st.oom_killed = oom
        sup.run = None
        sup.exits += 1
        run.exited.set()
        container.save()
        await self.runtime.release(container.id, run.process.pid)
        if run.spill is not None:
            if not run.spill.quiet:  # a run that never wrote a byte made neither file
                remove_output_files(container.directory, run.process.pid)
            sup.output_clean = True
        sup.hub.end_run()
        if oom:
            self.publish(container, "oom")
        self.publish(container, "die", exitCode=str(run.exit_code))
        sup.notify()
        await self._undo_host(container, run.cgroup)
        sup.host_clean = sup.mount_refs == 0
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
        if container.manually_stopped or self._shutting_down:
            return False
        policy = container.restart_policy
        name = policy.name
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and exit_code != 0:
            retries = policy.maximum_retry_count
            return retries == 0 or container.restart_count < retries
        return False

    # --- stop / kill / restart ---------------------------------------------------------------


def _oom_killed(cgroup) -> bool:
    try:
        return cgroup.oom_kill_count() > 0
    except (OSError, errors.EngineError):
        return False


def next_restart_delay(previous: float, ran_ns: int) -> float:
    """Seconds before a restart, as dockerd's restart manager counts them: 100 ms the first
    time and after a run of 10 s or more, else twice the previous delay, at most a minute."""
    if not previous or ran_ns >= 10_000_000_000:
        return 0.1
    return min(previous * 2, 60.0)
