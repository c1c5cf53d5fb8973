"""What clients read from and write to a container's run: output, stdin, tty, logs, top,
stats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from engine import errors
from engine.containers.model import Container, Status, now_ns


#: How long a log read waits for the output written before it to be logged.
CATCH_UP_TIMEOUT = 10.0
#: How long it waits for the spawner's answer: µs on a quiet machine, but under load the answer
#: queues behind the spawner's and the event loop's other work, and a read that gives up misses
#: output written before it. Bounded because a spawner binary left from an older build (not
#: rebuilt after an update of the sources) never answers.
FLUSH_TIMEOUT = 5.0


class ContainerStreams:
    """ContainerManager's views of a live run (mixed into it): output subscriptions, stdin,
    tty size, logs, processes and stats."""

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
        if close_on_eof and not container.config.tty:
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

    async def catch_up_log(self, container: Container) -> None:
        """Before a read of a live run's log: what its process wrote up to now is logged
        first (the runtime reads what the output pipes hold into the run's spill, and the
        pump logs up to there), so `docker logs` sees all output written before it, however
        the container, the spawner and the daemon happened to be scheduled. Bounded: a log
        that cannot keep up never holds a reader for long."""
        sup = self._supervisors.get(container.id)
        run = sup.run if sup is not None else None
        if run is None or run.spill is None or run.log is None:
            return
        offsets = None
        with trio.move_on_after(FLUSH_TIMEOUT):
            offsets = await self.runtime.flush_output(container.id, run.process.pid)
        if offsets:
            with trio.move_on_after(CATCH_UP_TIMEOUT):
                await run.spill.wait_fed(offsets)

    def log_reader(self, container: Container):
        """The live run's log driver (follow works), or a read-only one on the file."""
        run = self._supervisors[container.id].run
        if run is not None and run.log is not None:
            return run.log, True
        from engine.containers.logs import JsonFileLogDriver

        return JsonFileLogDriver.reader(container.log_path), False

    async def top(self, ref: str, ps_args: str = "-ef"):
        """The container's processes: a top.ProcessTable."""
        from engine.containers.top import top

        container = self.get(ref)
        run = self._supervisors[container.id].run
        if run is None or not container.state.status.is_live():
            raise errors.Conflict(f"Container {container.id} is not running")
        pids = await trio.to_thread.run_sync(run.cgroup.pids)
        return await top(pids, ps_args or "-ef")

    async def stats_sample(self, container: Container):
        """A stats.StatsSample of the container now (no counters when it does not run)."""
        from engine.containers.stats import StatsSample, network_stats

        run = self._supervisors[container.id].run
        read_ns = now_ns()
        if run is None:
            return StatsSample(read_ns, container.name, container.id)

        own_netns = not container.host_config.shares_host_network
        pid = run.process.pid

        def read():
            return run.cgroup.stats(), network_stats(pid) if own_netns else {}

        cgroup_stats, networks = await trio.to_thread.run_sync(read)
        return StatsSample(read_ns, container.name, container.id, cgroup_stats, networks)

    # --- events -------------------------------------------------------------------------------
