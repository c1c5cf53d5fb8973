"""Docker's JSON progress stream (pull, push, build): the messages of each step and the
streaming response a producer task feeds, its error as the stream's last line."""

from __future__ import annotations

import json
import logging
import math

import trio

from engine import errors
from engine.api._responses import StreamingResponse
from engine.images import Pushed

__all__ = ["ProgressResponse", "progress_message"]

log = logging.getLogger("engine.api")


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        engine_errors = [e for e in exc.exceptions if not isinstance(e, BaseExceptionGroup) and isinstance(e, errors.EngineError)]
        exc = engine_errors[0] if engine_errors else exc.exceptions[0]
    return exc


def _error_message(exc: BaseException) -> dict:
    exc = _leaf(exc)
    message = exc.message if isinstance(exc, errors.EngineError) else (str(exc) or type(exc).__name__)
    return {"errorDetail": {"message": message}, "error": message}


def _progress_bar(current: int, total: int) -> str:
    def human(n: float) -> str:
        for unit in ("B", "kB", "MB", "GB"):
            if n < 1000 or unit == "GB":
                return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
            n /= 1000
        return f"{n}B"

    if total <= 0:
        return f"{human(current)}"
    width = 50
    filled = min(width, int(width * current / total))
    bar = "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (width - filled)
    return f"[{bar}] {human(current)}/{human(total)}"


def progress_message(event) -> dict:
    """Docker's JSON message for a step of a pull or push (engine.images.Progress, Pushed)."""
    if isinstance(event, Pushed):
        return {"progressDetail": {}, "aux": {"Tag": event.tag, "Digest": event.digest, "Size": event.size}}
    out: dict = {"status": event.status}
    if event.layer:
        out["progressDetail"] = {} if event.current is None else {"current": event.current, "total": event.total}
    if event.bar:
        out["progress"] = _progress_bar(event.current or 0, event.total or 0)
    if event.id:
        out["id"] = event.id
    return out


class ProgressResponse(StreamingResponse):
    """Docker's JSON progress stream fed by a task: `producer(emit)` runs beside the sender;
    an error it raises becomes the stream's last {"errorDetail", "error"} line. When the
    client goes away, the producer is cancelled."""

    def __init__(self, producer):
        super().__init__(None, "application/json")
        self.producer = producer

    async def send_asgi(self, send, request) -> None:
        send_ch, recv_ch = trio.open_memory_channel(math.inf)

        async def run() -> None:
            async with send_ch:
                try:
                    await self.producer(send_ch.send)
                except trio.Cancelled:
                    raise
                except Exception as exc:  # noqa: BLE001 — reported in the stream
                    if isinstance(exc, BaseExceptionGroup) and any(
                            isinstance(e, trio.Cancelled) for e in exc.exceptions):
                        raise
                    if not isinstance(_leaf(exc), errors.EngineError):
                        log.exception("%s %s failed", request.method, request.path)
                    await send_ch.send(_error_message(exc))

        async def lines():
            # Whatever is queued goes out as one chunk (a build's cached steps come in bursts).
            async with recv_ch:
                async for item in recv_ch:
                    batch = [json.dumps(item).encode() + b"\r\n"]
                    while True:
                        try:
                            batch.append(json.dumps(recv_ch.receive_nowait()).encode() + b"\r\n")
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    yield b"".join(batch)

        self.content = lines()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await super().send_asgi(send, request)
            nursery.cancel_scope.cancel()
