"""Fan-out of a container's live output to attach subscribers."""

from __future__ import annotations

import trio

STDIN, STDOUT, STDERR = 0, 1, 2


class OutputHub:
    """Lives as long as the container. A subscriber gets the output of the current run (or of
    the next one, if it subscribed while the container was not running) and sees its channel
    close when that run ends, after everything published before.

    An attached client gets all of the output: a subscriber whose buffer is full holds the
    output back (as dockerd's attach does) — for at most STALL_TIMEOUT per chunk; one that
    stays stuck that long is dropped (its stream ends; the log file still has everything)."""

    BUFFER = 1024
    STALL_TIMEOUT = 3.0  # below pumps.SINK_TIMEOUT: a chunk's sink must finish within it

    def __init__(self) -> None:
        self._subscribers: set[trio.MemorySendChannel] = set()

    def subscribe(self) -> trio.MemoryReceiveChannel:
        send, receive = trio.open_memory_channel(self.BUFFER)
        self._subscribers.add(send)
        return receive

    async def publish(self, stream: int, data: bytes) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait((stream, data))
                continue
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._drop(send)
                continue
            with trio.move_on_after(self.STALL_TIMEOUT) as stalled:
                try:
                    await send.send((stream, data))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._drop(send)
            if stalled.cancelled_caught:
                self._drop(send)

    def _drop(self, send: trio.MemorySendChannel) -> None:
        self._subscribers.discard(send)
        send.close()

    def end_run(self) -> None:
        """The run ended: every subscriber's stream ends after what it has queued."""
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()

    def statistics(self) -> dict:
        return {"subscribers": len(self._subscribers)}
