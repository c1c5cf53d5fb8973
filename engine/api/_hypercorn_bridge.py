"""Every hypercorn import lives here (hypercorn is pinned to 0.18.0; TCPServer is internal).

Hypercorn serves websocket upgrades only (plain requests: engine/api/_http1.py): ONE
connection with hypercorn's trio TCPServer over a stream that first replays the request head
(written again by h11) and the bytes read after it. `keep_alive_max_requests = 1`: should a
client send a plain request on it, hypercorn answers with `Connection: close`, so every request
on a socket passes through our server."""

from __future__ import annotations

import logging

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

__all__ = ["HypercornBridge"]

log = logging.getLogger("engine.api")


class _ReplayStream:
    """Looks enough like the trio.SocketStream / SSLStream hypercorn expects."""

    def __init__(self, stream, initial: bytes):
        self._stream = stream
        self._initial = initial
        self._ssl = isinstance(stream, trio.SSLStream)
        if self._ssl:
            self.transport_stream = stream.transport_stream
        else:
            self.socket = stream.socket

    def __getattr__(self, name):
        # Only SSL streams offer these; hypercorn probes for them (AttributeError = plain).
        if name in ("do_handshake", "selected_alpn_protocol") and self._ssl:
            if name == "do_handshake":
                async def _done() -> None:  # the server completed it before peeking
                    return None
                return _done
            return lambda: "http/1.1"
        raise AttributeError(name)

    async def receive_some(self, max_bytes=None) -> bytes:
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if self._ssl:
            raise AttributeError("send_eof")  # hypercorn treats this as "SSL: nothing to do"
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class HypercornBridge:
    """Shared hypercorn state for one API server."""

    def __init__(self, app, *, max_header_size: int = 64 * 1024):
        config = Config()
        config.keep_alive_max_requests = 1
        config.include_server_header = False  # ours is dockerd-like (Server: Docker/…)
        config.h11_max_incomplete_size = max_header_size
        config.accesslog = None
        config.errorlog = logging.getLogger("engine.api.hypercorn")
        config.read_timeout = None  # event and log streams live for hours
        config.keep_alive_timeout = 60
        config.websocket_ping_interval = None
        self.config = config
        self.app = ASGIWrapper(app)
        self.context = WorkerContext(None)

    async def serve_connection(self, stream, initial: bytes) -> None:
        server = TCPServer(self.app, self.config, self.context, ConnectionState({}), _ReplayStream(stream, initial))
        await server.run()
