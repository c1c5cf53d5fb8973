"""Output pumps shared by container runs and execs: read a process's pipes (or pty master)
until EOF, hand each chunk to a sink, and wait for the process to exit."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

#: How long pumps may outlive their process (an escaped child can hold a pipe open).
DRAIN_TIMEOUT = 2.0
#: How long one chunk's sink may hold off cancellation.
SINK_TIMEOUT = 5.0
#: Reads (64 KiB each) of what is left in a pipe once pumps gave up waiting for EOF.
DRAIN_READS = 16

Sink = Callable[[int, bytes], Awaitable[None]]


class GiveUp:
    """Tells pumps to stop waiting for EOF (their process exited long ago, yet something still
    holds the pipe open): each takes what is already in its pipe, without blocking, and ends.
    Output the process wrote before it exited is never dropped this way."""

    def __init__(self) -> None:
        self.given_up = False
        self._waits: set[trio.CancelScope] = set()

    def __call__(self) -> None:
        self.given_up = True
        for scope in self._waits:
            scope.cancel()

    @contextlib.contextmanager
    def waiting(self):
        """A wait for more output, cut short when pumps are given up."""
        with trio.CancelScope() as scope:
            self._waits.add(scope)
            if self.given_up:
                scope.cancel()
            try:
                yield
            finally:
                self._waits.discard(scope)


async def pump(fd: int, stream_id: int, sink: Sink | None, give_up: GiveUp | None = None) -> None:
    """Read `fd` until EOF (a pty master: EIO), handing each chunk to `sink`; given up, take
    what is in it without waiting and end. Closes `fd`."""
    drained = 0
    try:
        while True:
            # Non-blocking before every read: an FdStream on a dup of this fd (a tty's stdin)
            # puts the shared file description back in blocking mode when it closes.
            os.set_blocking(fd, False)
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                if give_up is not None and give_up.given_up:
                    break
                with give_up.waiting() if give_up is not None else contextlib.nullcontext():
                    await trio.lowlevel.wait_readable(fd)
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:  # a pty master once every slave fd is closed: EOF
                    break
                raise
            if not data:
                break
            if sink is not None:
                # What was read reaches the sink (the log) even when we are being cancelled.
                with trio.CancelScope(shield=True, deadline=trio.current_time() + SINK_TIMEOUT):
                    await sink(stream_id, data)
            if give_up is not None and give_up.given_up:
                drained += 1
                if drained >= DRAIN_READS:  # bounded: a child may go on writing
                    break
            await trio.lowlevel.checkpoint()
    finally:
        try:
            trio.lowlevel.notify_closing(fd)
        except RuntimeError:
            pass
        os.close(fd)


def _replaced(fd: int, path: str) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


class SpillSource:
    """A run's output as the spawner spills it (engine/runtime/spill.py): `fed` says, per
    stream id, the stream offset up to which it was handed to a sink already (a resumed run:
    what its log holds), `durable(stream_id)` up to where the sink keeps it for sure (the
    journaled log), so that the spawner may drop the rest of the file's head."""

    def __init__(self, runtime, container_id: str, pid: int, path: str, streams: tuple[int, ...],
                 fed: dict[int, int] | None = None) -> None:
        self.runtime, self.container_id, self.pid, self.path = runtime, container_id, pid, path
        self.streams = streams
        self.fed = {s: 0 for s in streams} | dict(fed or {})
        self.durable: Callable[[int], int] = lambda stream_id: self.fed[stream_id]
        self.pumped = False  # a pump_spill of it ended
        self.armed = False  # its spawn armed the runtime for the first wait (wait_output(armed))
        self.quiet = False  # the run ended without a byte spilled: it has no spill file
        self._progress = trio.Event()

    def advanced(self) -> None:
        """`fed` moved on (or the pump ended): wake `wait_fed`."""
        self._progress.set()
        self._progress = trio.Event()

    async def wait_fed(self, offsets: dict[int, int]) -> None:
        """Until every stream was handed to the sink up to `offsets` ({stream id: offset}),
        or the pump ended."""
        while not self.pumped and any(self.fed[s] < off for s, off in offsets.items() if s in self.fed):
            await self._progress.wait()


async def pump_spill(source: SpillSource, sink: Sink | None, give_up: GiveUp | None = None) -> None:
    """Hand the run's spilled output to `sink` (data, capture time, stream offset) until every
    stream ended; given up, take what the file holds now and end."""
    from engine.runtime.spill import NO_SPILL, read_records

    fd = -1
    pos, drained = 0, 0
    ended: set[int] = set()
    kept: dict[int, deque] = {s: deque() for s in source.streams}  # (file offset, stream end) not yet durable
    try:
        while True:
            # An armed run's first wait answers once its file has a byte (or never will): no
            # open before it (a silent run never has a file).
            if fd < 0 and (not source.armed or (give_up is not None and give_up.given_up)):
                try:
                    fd = os.open(source.path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    pass
            records, pos = read_records(fd, pos) if fd >= 0 else ([], pos)
            for rec in records:
                if rec.stream not in kept:
                    continue
                if not rec.data:
                    ended.add(rec.stream)
                    continue
                end = rec.offset + len(rec.data)
                kept[rec.stream].append((rec.file_offset, end))
                fed = source.fed[rec.stream]
                if end <= fed:
                    continue
                if sink is not None:
                    with trio.CancelScope(shield=True, deadline=trio.current_time() + SINK_TIMEOUT):
                        await sink(rec.stream, rec.data[max(0, fed - rec.offset):], rec.ts_ns, max(fed, rec.offset))
                source.fed[rec.stream] = end
            if records:
                source.advanced()
            if ended >= set(source.streams):
                return
            if give_up is not None and give_up.given_up:
                drained += 1
                if not records or drained >= DRAIN_READS:  # bounded: a child may go on writing
                    return
            if records:
                await trio.lowlevel.checkpoint()
                continue
            keep_from = pos
            for stream_id, queue in kept.items():
                durable = source.durable(stream_id)
                while queue and queue[0][1] <= durable:
                    queue.popleft()
                if queue:
                    keep_from = min(keep_from, queue[0][0])
            new = None
            with give_up.waiting() if give_up is not None else contextlib.nullcontext():
                armed, source.armed = source.armed, False
                new = await source.runtime.wait_output(source.container_id, source.pid, pos, keep_from,
                                                       armed=armed)
            if new == NO_SPILL:
                source.quiet = True
                return
            if new is None:
                if give_up is None or not give_up.given_up:
                    return  # the run (or the spawner) is gone
                continue
            if fd >= 0 and _replaced(fd, source.path):
                os.close(fd)  # the head was dropped (a new file): read it from its start
                fd, pos = -1, 0
                for queue in kept.values():
                    queue.clear()
    finally:
        if fd >= 0:
            os.close(fd)
        source.pumped = True
        source.advanced()


async def feed(fd: int, chunks: AsyncIterator[bytes], eof_byte: bytes | None = None) -> None:
    """Client bytes → the process's stdin; on client EOF close it (or send ^D to a tty)."""
    stream = trio.lowlevel.FdStream(fd)
    try:
        async for data in chunks:
            await stream.send_all(data)
        if eof_byte:
            await stream.send_all(eof_byte)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def drive(process, outputs: list[tuple[int, int]], sink: Sink | None,
                stdin: tuple[int, AsyncIterator[bytes], bytes | None] | None = None,
                nursery_hook: Callable[[trio.Nursery | None], None] | None = None,
                detached: Callable[[], bool] | None = None, spill: SpillSource | None = None) -> int | None:
    """Pump `outputs` [(fd, stream_id)] (or the run's `spill`) into `sink` while waiting for
    `process`; return its exit code. Cancelled (daemon shutdown, rm -f), it kills and reaps
    the process first — unless `detached()` says the process is to outlive us (live
    restore): then None."""
    code = None
    try:
        async with trio.open_nursery() as nursery:
            if nursery_hook:
                nursery_hook(nursery)
            pumps_done = trio.Event()
            give_up = GiveUp()

            jobs = [(pump, fd, stream_id, sink, give_up) for fd, stream_id in outputs]
            if spill is not None:
                jobs.append((pump_spill, spill, sink, give_up))

            async def pumps() -> None:
                if len(jobs) == 1:  # a run's spill (or one pipe): no nursery of its own
                    await jobs[0][0](*jobs[0][1:])
                else:
                    async with trio.open_nursery() as inner:
                        for job in jobs:
                            inner.start_soon(*job)
                pumps_done.set()

            nursery.start_soon(pumps)
            if stdin is not None:
                nursery.start_soon(feed, *stdin)
            code = await process.wait()
            with trio.move_on_after(DRAIN_TIMEOUT):
                await pumps_done.wait()
            if not pumps_done.is_set():
                give_up()  # take what is in the pipes, stop waiting for EOF
                with trio.move_on_after(SINK_TIMEOUT):
                    await pumps_done.wait()
            nursery.cancel_scope.cancel()
        return code
    finally:
        if nursery_hook:
            nursery_hook(None)
        if code is None and not (detached is not None and detached()):
            with trio.CancelScope(shield=True):
                process.send_signal(signal.SIGKILL)
                await process.wait()
