"""Output pumps shared by container runs and execs: read a process's pipes (or pty master)
until EOF, hand each chunk to a sink, and wait for the process to exit."""

from __future__ import annotations

import errno
import os
import signal
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


async def pump(fd: int, stream_id: int, sink: Sink | None, give_up: GiveUp | None = None) -> None:
    stream = trio.lowlevel.FdStream(fd)
    try:
        while True:
            data = None
            with trio.CancelScope() as wait:
                if give_up is not None:
                    give_up._waits.add(wait)
                    if give_up.given_up:
                        wait.cancel()
                try:
                    data = await stream.receive_some(65536)
                except (OSError, trio.BrokenResourceError) as exc:
                    # A pty master reads EIO once every slave fd is closed: that is its EOF.
                    cause = exc if isinstance(exc, OSError) else exc.__cause__
                    if isinstance(cause, OSError) and cause.errno == errno.EIO:
                        data = b""
                    else:
                        raise
                finally:
                    if give_up is not None:
                        give_up._waits.discard(wait)
            if data is None:  # given up: what is in the pipe now, bounded (a child may go on)
                for _ in range(DRAIN_READS):
                    try:
                        data = os.read(fd, 65536)
                    except OSError:
                        break
                    if not data:
                        break
                    if sink is not None:
                        with trio.CancelScope(shield=True, deadline=trio.current_time() + SINK_TIMEOUT):
                            await sink(stream_id, data)
                break
            if not data:
                break
            if sink is not None:
                # What was read reaches the sink (the log) even when we are being cancelled,
                # e.g. a live-restore stop: the rest stays in the pipe for the next daemon.
                with trio.CancelScope(shield=True, deadline=trio.current_time() + SINK_TIMEOUT):
                    await sink(stream_id, data)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def pump_teed(fd: int, stream_id: int, sink: Sink | None) -> None:
    """`pump` for a container's output pipe under live restore: each chunk is copied out
    (tee), handed to the sink (the log) and only then consumed, so a daemon killed in
    between leaves it in the pipe for the next one (at least once, never lost)."""
    from engine.runtime import pipe_tee

    scratch_r, scratch_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    os.set_blocking(fd, False)
    try:
        while True:
            try:
                n = pipe_tee(fd, scratch_w, 65536)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fd)
                continue
            if n == 0:
                break
            data = os.read(scratch_r, n)
            if sink is not None:
                with trio.CancelScope(shield=True, deadline=trio.current_time() + SINK_TIMEOUT):
                    await sink(stream_id, data)
            os.read(fd, n)
            await trio.lowlevel.checkpoint()
    finally:
        for end in (fd, scratch_r, scratch_w):
            try:
                trio.lowlevel.notify_closing(end)
            except RuntimeError:
                pass
            os.close(end)


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
                detached: Callable[[], bool] | None = None, teed: bool = False) -> int | None:
    """Pump `outputs` [(fd, stream_id)] into `sink` while waiting for `process`; return its
    exit code. Cancelled (daemon shutdown, rm -f), it kills and reaps the process first —
    unless `detached()` says the process is to outlive us (live restore): then None.
    `teed`: the outputs are pipes read with pump_teed."""
    code = None
    try:
        async with trio.open_nursery() as nursery:
            if nursery_hook:
                nursery_hook(nursery)
            pumps_done = trio.Event()
            give_up = GiveUp()

            async def pumps() -> None:
                async with trio.open_nursery() as inner:
                    for fd, stream_id in outputs:
                        if teed:
                            inner.start_soon(pump_teed, fd, stream_id, sink)
                        else:
                            inner.start_soon(pump, fd, stream_id, sink, give_up)
                pumps_done.set()

            nursery.start_soon(pumps)
            if stdin is not None:
                nursery.start_soon(feed, *stdin)
            code = await process.wait()
            with trio.move_on_after(DRAIN_TIMEOUT):
                await pumps_done.wait()
            if not pumps_done.is_set() and not teed:
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
