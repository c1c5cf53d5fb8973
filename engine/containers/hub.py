"""Fan-out of a container's live output to attach subscribers."""

from __future__ import annotations

import trio

STDIN, STDOUT, STDERR = 0, 1, 2


class OutputHub:
    """Lives as long as the container. A subscriber gets the output of the current run (or of
    the next one, if it subscribed while the container was not running) and sees its channel
    close when that run ends. A subscriber that cannot keep up is dropped — the container's
    output never waits for a slow client (its log file still has everything)."""

    BUFFER = 1024

    def __init__(self) -> None:
        self._subscribers: set[trio.MemorySendChannel] = set()

    def subscribe(self) -> trio.MemoryReceiveChannel:
        send, receive = trio.open_memory_channel(self.BUFFER)
        self._subscribers.add(send)
        return receive

    def publish(self, stream: int, data: bytes) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait((stream, data))
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(send)
                send.close()

    def end_run(self) -> None:
        """The run ended: every subscriber's stream ends after what it has queued."""
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()

    def statistics(self) -> dict:
        return {"subscribers": len(self._subscribers)}
