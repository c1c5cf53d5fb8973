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


async def pump(fd: int, stream_id: int, sink: Sink | None, give_up: GiveUp | None = None,
               teed: bool = False) -> None:
    """Read `fd` until EOF (a pty master: EIO), handing each chunk to `sink`; given up, take
    what is in it without waiting and end. `teed` (a container's output pipe under live
    restore): each chunk is copied out (tee), handed to the sink (the log) and only then
    consumed, so a daemon killed in between leaves it in the pipe for the next one (at least
    once, never lost). Closes `fd`."""
    from engine.runtime import pipe_tee

    scratch = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK) if teed else None
    drained = 0
    try:
        while True:
            # Non-blocking before every read: an FdStream on a dup of this fd (a tty's stdin)
            # puts the shared file description back in blocking mode when it closes.
            os.set_blocking(fd, False)
            try:
                if scratch is not None:
                    n = pipe_tee(fd, scratch[1], 65536)
                    data = os.read(scratch[0], n) if n else b""
                else:
                    data = os.read(fd, 65536)
            except BlockingIOError:
                if give_up is not None and give_up.given_up:
                    break
                with trio.CancelScope() as wait:
                    if give_up is not None:
                        give_up._waits.add(wait)
                        if give_up.given_up:
                            wait.cancel()
                    try:
                        await trio.lowlevel.wait_readable(fd)
                    finally:
                        if give_up is not None:
                            give_up._waits.discard(wait)
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:  # a pty master once every slave fd is closed: EOF
                    break
                raise
            if not data:
                break
            if sink is not None:
                # What was read reaches the sink (the log) even when we are being cancelled,
                # e.g. a live-restore stop: the rest stays in the pipe for the next daemon.
                with trio.CancelScope(shield=True, deadline=trio.current_time() + SINK_TIMEOUT):
                    await sink(stream_id, data)
            if scratch is not None:
                os.read(fd, len(data))
            if give_up is not None and give_up.given_up:
                drained += 1
                if drained >= DRAIN_READS:  # bounded: a child may go on writing
                    break
            await trio.lowlevel.checkpoint()
    finally:
        for end in (fd, *(scratch or ())):
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
    `teed`: the outputs are pipes, read tee-then-consume (see pump)."""
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
                        inner.start_soon(pump, fd, stream_id, sink, give_up, teed)
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
