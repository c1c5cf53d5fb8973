"""A small wrapper over an ASGI websocket connection for `@router.websocket` handlers."""

from __future__ import annotations

import trio

__all__ = ["WebSocket"]


class WebSocket:
    """Private constructor: the app builds it from the ASGI scope."""

    def __init__(self, receive, send):
        self._receive = receive
        self._send = send
        self._send_lock = trio.Lock()
        self.accepted = False
        self.closed = False
        self.close_code: int | None = None

    async def accept(self, subprotocol: str | None = None) -> None:
        msg = await self._receive()
        if msg["type"] != "websocket.connect":
            self.closed = True
            raise trio.BrokenResourceError("websocket client went away before accept")
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol})
        self.accepted = True

    async def receive(self) -> str | bytes | None:
        """The next message; None once the client closed the connection."""
        if self.closed:
            return None
        msg = await self._receive()
        if msg["type"] == "websocket.receive":
            return msg.get("text") if msg.get("text") is not None else msg.get("bytes")
        self.closed = True
        self.close_code = msg.get("code")
        return None

    async def wait_closed(self) -> None:
        while await self.receive() is not None:
            pass

    async def send_text(self, data: str) -> None:
        async with self._send_lock:
            await self._send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed and self.accepted:
            return
        async with self._send_lock:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        self.closed = True
