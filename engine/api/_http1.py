"""One plain HTTP/1.1 request served by driving the ASGI app ourselves over h11, so that the
connection stays open for the next request (keep-alive, as dockerd serves it).

The server (engine/api/_server.py) reads each request head itself, sends hijacks and websocket
upgrades elsewhere, and hands everything else here. Spinning up hypercorn's per-connection
machinery for one request cost more CPU than most handlers do (create→start→wait→rm is four
requests) and made pooled clients reconnect for every request.

What hypercorn did and this keeps: the response head goes out as soon as the app starts a
streaming response (no Content-Length: `docker wait` and event streams rely on it); no body for
HEAD, 204 and 304; `100 Continue` when the client waits for it; a 500 when the app ends without
answering; `http.disconnect` from `receive()` once the client has gone; a Date header.
"""

from __future__ import annotations

import email.utils
import logging
import time
from urllib.parse import unquote

import h11
import trio

__all__ = ["serve_request"]

log = logging.getLogger("engine.api")

RECEIVE_SIZE = 65536
#: Bytes of a next (pipelined) request we keep while watching for a disconnect.
MAX_PENDING = 64 * 1024

_date = [0, b""]


def _date_header() -> bytes:
    now = int(time.time())
    if _date[0] != now:
        _date[0], _date[1] = now, email.utils.formatdate(now, usegmt=True).encode()
    return _date[1]


def _no_body(method: bytes, status: int) -> bool:
    return method == b"HEAD" or status in (204, 304) or 100 <= status < 200


class _Exchange:
    """The ASGI receive/send pair of one request on an h11 connection."""

    def __init__(self, stream, conn: h11.Connection, request: h11.Request):
        self.stream = stream
        self.conn = conn
        self.method = request.method.upper()
        self.body_done = False
        self.disconnected = False
        self.broken = False  # nothing more can be sent or read on this connection
        self.head: h11.Response | None = None  # a deferred complete-response head
        self.status = 0
        self.started = False
        self.finished = False
        self.pending = bytearray()  # bytes read after the body: the next request's

    # -- receive

    async def receive(self) -> dict:
        if not self.body_done and not self.disconnected:
            while True:
                try:
                    event = self.conn.next_event()
                except h11.RemoteProtocolError:
                    self.broken = True
                    return self._disconnect()
                if event is h11.NEED_DATA:
                    if self.conn.they_are_waiting_for_100_continue:
                        await self._send_bytes(self.conn.send(h11.InformationalResponse(
                            status_code=100, headers=[(b"date", _date_header())])))
                    data = await self._receive_some()
                    if data is None:
                        return self._disconnect()
                    self.conn.receive_data(data)
                    continue
                if isinstance(event, h11.Data):
                    return {"type": "http.request", "body": bytes(event.data), "more_body": True}
                if isinstance(event, h11.EndOfMessage):
                    self.body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                return self._disconnect()  # ConnectionClosed, PAUSED cannot happen mid-body
        # The body is read: wait for the client to go away.
        while not self.disconnected and not self.finished:
            if len(self.pending) >= MAX_PENDING:
                await trio.sleep_forever()
            data = await self._receive_some()
            if data is None:
                return self._disconnect()
            self.pending += data
        return self._disconnect()

    async def _receive_some(self) -> bytes | None:
        """Bytes from the client; None once it closed or the connection broke."""
        if self.broken:
            return None
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            self.broken = True
            return None
        if not data:
            self.broken = True  # half-closed: h11 would not take another request anyway
            return None
        return data

    def _disconnect(self) -> dict:
        self.disconnected = True
        return {"type": "http.disconnect"}

    # -- send

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("response already started")
            self.started = True
            self.status = int(message["status"])
            headers = [(b"date", _date_header()), *message.get("headers", ())]
            head = h11.Response(status_code=self.status, headers=headers)
            if _no_body(self.method, self.status) or any(k.lower() == b"content-length" for k, _ in headers):
                self.head = head  # complete response: goes out with its body in one write
            else:
                await self._send_event(head)  # streaming: the head goes out at once
        elif kind == "http.response.body":
            if not self.started or self.finished:
                raise RuntimeError("response body outside a response")
            out = [self.conn.send(self.head)] if self.head is not None else []
            self.head = None
            body = message.get("body", b"")
            if body and not _no_body(self.method, self.status):
                out.append(self.conn.send(h11.Data(data=body)))
            if not message.get("more_body", False):
                out.append(self.conn.send(h11.EndOfMessage()))
                self.finished = True
            await self._send_bytes(b"".join(out))

    async def _send_event(self, event) -> None:
        await self._send_bytes(self.conn.send(event))

    async def _send_bytes(self, data: bytes) -> None:
        if not data or self.broken:
            return
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            # As hypercorn: the app is not told through send(); receive() says it.
            self.broken = True

    async def error_500(self) -> None:
        self.started = True
        self.status = 500
        self.head = h11.Response(status_code=500, headers=[(b"date", _date_header()), (b"content-length", b"0"),
                                                           (b"connection", b"close")])
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})


def _scope(request: h11.Request, tls: bool) -> dict:
    raw_path, _, query = request.target.partition(b"?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.http_version.decode(),
        "method": request.method.decode("ascii").upper(),
        "scheme": "https" if tls else "http",
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": list(request.headers),
        "client": None,
        "server": None,
        "extensions": {},
    }


async def serve_request(app, stream, conn: h11.Connection, request: h11.Request, *, tls: bool) -> bytes | None:
    """Serve `request` (its head already read by `conn`) with the ASGI `app`. Returns the
    bytes already received of the next request when the connection can carry another one,
    None when it must be closed."""
    exchange = _Exchange(stream, conn, request)
    await app(_scope(request, tls), exchange.receive, exchange.send)
    if not exchange.started and not exchange.broken:
        log.error("%s %s ended without a response", request.method.decode(), request.target.decode("latin-1"))
        await exchange.error_500()
    if exchange.broken or not exchange.finished or exchange.disconnected and not exchange.body_done:
        return None
    if conn.their_state is not h11.DONE:
        # The app answered without reading the whole body: skip it (bounded), as a keep-alive
        # server must, or close.
        with trio.move_on_after(5):
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError:
                    return None
                if event is h11.NEED_DATA:
                    data = await exchange._receive_some()
                    if data is None:
                        return None
                    conn.receive_data(data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif not isinstance(event, h11.Data):
                    return None
        if conn.their_state is not h11.DONE:
            return None
    if conn.our_state is not h11.DONE:
        return None  # MUST_CLOSE: HTTP/1.0, `Connection: close`
    trailing, closed = conn.trailing_data
    return None if closed else bytes(trailing) + bytes(exchange.pending)
