"""Daemon start: container records back into memory, and live restore. A live record whose
process the runtime kept running (engine.runtime.Runtime.adopt) is resumed as it is — rootfs,
cgroup, network and volumes stay; whatever a dead daemon left of the other containers
(rootfs mounts, cgroups, runtime entries) goes, and a live record without a process is
recorded as exited, with the exit code the runtime saw when it saw one."""

from __future__ import annotations

import logging
import os
import shutil

import trio

from engine import errors
from engine.containers import propagation as bind_propagation
from engine.containers import record
from engine.containers.cgroupparent import cgroup_of
from engine.containers.hub import STDERR, STDOUT
from engine.containers.pumps import DRAIN_TIMEOUT, GiveUp, pump_spill
from engine.containers.supervision import remove_output_files
from engine.containers.model import Container, State, Status, now_ns
from engine.runtime import cgroups, unmount

log = logging.getLogger(__name__)

LOST = "the daemon stopped while the container was running; its process was lost"


def recover(containers_dir: str, cgroup_parent: str, adopted: dict,
            legacy: record.LegacyReader | None = None) -> tuple[list[Container], list]:
    """Blocking (call in a thread). Returns (every container, [(container, Adopted) to resume]).
    `legacy` reads records of an older format (engine.containers.record)."""
    containers, resume = [], []
    for entry in os.listdir(containers_dir):
        directory = os.path.join(containers_dir, entry)
        try:
            container = record.load(directory, legacy)
        except record.UnreadableRecord as exc:
            # A whole record this daemon cannot read: kept on disk for a daemon that can.
            log.error("container record %s not loaded (left in place): %s", directory, exc)
            continue
        except (OSError, ValueError, TypeError, KeyError):
            log.warning("removing half-created container dir %s", directory)
            for mounted in ("merged", "shm"):
                unmount_quiet(os.path.join(directory, mounted))
            shutil.rmtree(directory, ignore_errors=True)
            continue
        # Records written before binds over the data root defaulted to rslave (and those of
        # format 1, which keep no default) get it too; a live one's mounts follow at its next start.
        container.host_config = bind_propagation.for_daemon_root(
            container.host_config, os.path.dirname(os.path.abspath(containers_dir)), strict=False)
        containers.append(container)
        status = container.state.status
        kept = adopted.get(container.id)
        if status.is_live() and kept is not None and kept.process is not None:
            container.state.pid = kept.pid
            resume.append((container, kept))
            continue
        unmount_quiet(container.rootfs)
        unmount_quiet(container.shm_path)  # IPC-shareable ones have one
        if status.is_live() or status is Status.REMOVING:
            code = kept.exit_code if kept is not None else None
            container.state = State(
                status=Status.EXITED,
                exit_code=container.state.exit_code if status is Status.REMOVING else 255 if code is None else code,
                error=LOST if code is None else "",
                started_at_ns=container.state.started_at_ns,
                finished_at_ns=now_ns(),
            )
            container.save()
    resumed = {c.id for c, _ in resume}
    cgroups.cleanup_stale(cgroup_parent, resumed)
    # A crash may have left a cgroup under a container's own --cgroup-parent too.
    for container in containers:
        if container.id not in resumed and container.host_config.cgroup_parent:
            try:
                cgroup_of(container, cgroup_parent).destroy()
            except errors.EngineError as exc:
                log.warning("container %s: stale cgroup left: %s", container.id, exc.message)
    return containers, resume


async def let_go_unclaimed(runtime, adopted: dict, resumed: set[str], containers: dict, open_log) -> None:
    """Runtime entries not resumed: a container that exited while no daemon watched it gets
    the output it wrote meanwhile into its log (`open_log(container)`: its log driver or
    None); the others (half-started when the last daemon died, or their record is gone) are
    killed. All are forgotten."""
    for cid, entry in adopted.items():
        if cid in resumed:
            continue
        container = containers.get(cid)
        if entry.process is not None:
            entry.process.kill()
            entry.process.close()
        elif entry.exit_code is not None and container is not None:
            if runtime.spills:
                await _ingest_spill(runtime, container, entry.pid, open_log(container))
            elif entry.fds:
                await _drain_into_log(entry.fds, open_log(container))
        for fd in entry.fds:
            os.close(fd)
        await runtime.release(cid)
        if container is not None and runtime.spills:
            remove_output_files(container.directory, entry.pid)


async def logged_so_far(container: Container, pid: int, driver) -> dict[str, int]:
    """What the log holds of the run `pid` (a torn last write is cut off)."""
    from engine.containers.journal import positions_path, recover

    if driver is None:
        return {"stdout": 0, "stderr": 0}
    return await trio.to_thread.run_sync(recover, positions_path(container.directory, pid),
                                         container.log_path, driver.max_file)


async def _ingest_spill(runtime, container: Container, pid: int, driver) -> None:
    """An exited run's spilled output into its log, from where the log stops."""
    from engine.containers.launch import open_spill

    source = open_spill(runtime, container, pid, driver, await logged_so_far(container, pid, driver))

    async def sink(stream_id: int, data: bytes, when_ns=None, offset=None) -> None:
        await driver.write("stdout" if stream_id == STDOUT else "stderr", data, when_ns, offset)

    give_up = GiveUp()
    done = trio.Event()

    async def ingest() -> None:
        try:
            await pump_spill(source, sink if driver is not None else None, give_up)
        finally:
            done.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ingest)
            with trio.move_on_after(DRAIN_TIMEOUT):  # (something it started may hold its pipes)
                await done.wait()
            give_up()
    finally:
        if driver is not None:
            await driver.aclose()


async def _drain_into_log(fds: list[int], driver) -> None:
    """What is left in an exited container's stdout/stderr pipes, to its log."""
    if driver is None:
        return
    try:
        for fd, stream in zip(fds[:2], ("stdout", "stderr")):
            os.set_blocking(fd, False)
            while True:
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break  # empty (a leftover process still holds the pipe), or a pty
                if not data:
                    break
                await driver.write(stream, data)
    finally:
        await driver.aclose()


def resumed_io(container: Container, entry, spills: bool) -> tuple[trio.lowlevel.FdStream | None, list[tuple[int, int]]]:
    """(stdin stream, [(fd, stream id)] to pump) from the fds the runtime held for the run.
    `spills`: the runtime reads the output itself (the daemon reads its spill file)."""
    fds = list(entry.fds)
    if container.config.tty and fds:
        entry.process.pty_master = fds[0]
        stdin = trio.lowlevel.FdStream(os.dup(fds[0])) if container.config.open_stdin else None
        return stdin, [] if spills else [(fds[0], STDOUT)]
    for fd in fds[2:] if not spills else fds:
        os.close(fd)
    return None, [] if spills else list(zip(fds[:2], (STDOUT, STDERR)))


def unmount_quiet(path: str) -> None:
    try:
        unmount(path)
    except OSError:
        pass


def remove_stale_output(containers: list[Container], live: dict[str, int]) -> None:
    """Blocking. Spill and positions files of runs that are over (`live`: container id → the
    pid of its resumed run, whose files stay)."""
    import glob

    for container in containers:
        keep = live.get(container.id)
        for path in glob.glob(os.path.join(container.directory, "output.*.*")):
            pid = os.path.basename(path).split(".")[1]
            if path.endswith((".spill", ".pos", ".spill.new")) and pid != str(keep):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
