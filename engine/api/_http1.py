"""Plain HTTP/1.1 on an API connection, parsed and framed by h11: one `h11.Connection` per
connection reads every request head and body (Content-Length, chunked, `100 Continue`,
pipelined requests, HTTP/1.0 clients), frames every response (chunked streaming, no body for
HEAD/204/304, `Connection: close` when the connection ends) and refuses what HTTP/1.1 does not
allow (h11.RemoteProtocolError: a 400, or h11's status hint, then close). The ASGI app is
driven over the same connection, which then carries the next request (keep-alive, as dockerd
serves it; `start_next_cycle`).

The server (engine/api/_server.py) reads each request with `HTTPConnection.next_request`, sends
hijacks and websocket upgrades elsewhere, and hands everything else to `serve_request`.

What this module still does itself, h11 leaving it to the server: the I/O and its time limits;
the response head of a streaming response goes out as soon as the app starts it (no
Content-Length: `docker wait` and event streams rely on it), that of a complete response with
its body in one write; a Date header and reason phrases; a 500 when the app ends without
answering; `http.disconnect` from `receive()` once the client has gone; a body the app did not
read is skipped (bounded) before the next request.

Connections (`SocketConn`, `StreamConn`): a plain socket is driven directly — a send or
receive that can complete does so without a trip through trio's scheduler, one that cannot
waits in epoll (`trio.lowlevel.wait_readable/writable`, which are checkpoints). The server
yields once per request h11 finds in bytes already received (pipelined), so a client
pipelining requests cannot starve other tasks. TLS connections keep their trio stream.
"""

from __future__ import annotations

import email.utils
import http
import logging
import socket
import time
from urllib.parse import unquote

import h11
import trio

__all__ = [
    "HTTPConnection", "HeadTimer", "HeadTimers", "SocketConn", "StreamConn", "request_head", "serve_request", "upgrade_of",
]

log = logging.getLogger("engine.api")

RECEIVE_SIZE = 65536
#: Bytes of a request head h11 buffers before refusing it (431).
MAX_HEAD = 64 * 1024
#: Seconds for a complete request head (also: how long an idle keep-alive connection stays).
HEAD_TIMEOUT = 60.0
#: Bytes of a next (pipelined) request we take while watching for a disconnect.
MAX_PENDING = 64 * 1024
#: Seconds we skip an unread request body before the next request (else: close).
DRAIN_TIMEOUT = 5.0


# ------------------------------------------------------------------------ connections


class SocketConn:
    """A plain client socket (unix or TCP). Errors surface as trio's stream errors."""

    __slots__ = ("sock", "_stream")

    def __init__(self, sock: socket.socket):
        sock.setblocking(False)
        self.sock = sock
        self._stream = None

    async def receive_some(self, max_bytes: int = RECEIVE_SIZE, *, idle: bool = False) -> bytes:
        """Bytes from the client; b"" once it half-closed. `idle`: nothing is expected yet
        (the next request just after a response, a disconnect): wait before reading rather
        than try a read that fails (a syscall and an exception)."""
        sock = self.sock
        if idle:
            await trio.lowlevel.wait_readable(sock)
        while True:
            try:
                return sock.recv(max_bytes)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _stream_error(sock, exc) from exc
            await trio.lowlevel.wait_readable(sock)

    async def send_all(self, data) -> None:
        sock = self.sock
        with memoryview(data) as view:
            while view:
                try:
                    sent = sock.send(view)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
                    continue
                except OSError as exc:
                    raise _stream_error(sock, exc) from exc
                view = view[sent:]

    def trio_stream(self) -> trio.SocketStream:
        """The connection as a trio stream (hijack and websocket handlers take those); from
        then on only through it."""
        if self._stream is None:
            self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(self.sock))
        return self._stream

    async def aclose(self) -> None:
        """Close the connection. Called by its task once nothing else uses it (what the app
        started on it has ended), so no task can be waiting on the socket: no
        notify_closing, whose EPOLL_CTL_DEL the close does anyway."""
        if self._stream is not None:
            await self._stream.aclose()
        elif self.sock.fileno() != -1:
            self.sock.close()


def _stream_error(sock: socket.socket, exc: OSError) -> Exception:
    if sock.fileno() == -1:
        return trio.ClosedResourceError("connection closed")
    return trio.BrokenResourceError(f"connection broken: {exc}")


class StreamConn:
    """A trio stream (TLS): the same interface over trio's stream API."""

    __slots__ = ("stream",)

    def __init__(self, stream):
        self.stream = stream

    async def receive_some(self, max_bytes: int = RECEIVE_SIZE, *, idle: bool = False) -> bytes:
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data) -> None:
        await self.stream.send_all(data)

    def trio_stream(self):
        return self.stream

    async def aclose(self) -> None:
        with trio.move_on_after(1, shield=True):
            await self.stream.aclose()


# ------------------------------------------------------------------------ requests


class HeadTimers:
    """The time limit of request heads, for every connection of a server: a connection
    notes when it starts waiting for a head (`HeadTimer.arm`) and `run` ends the waits
    older than HEAD_TIMEOUT (`HeadTimer.expire`), looking every SWEEP_INTERVAL seconds (so
    a limit of 60–75 s). A deadline per head cost more: each change of a trio deadline is a
    context manager and a heap update, twice per request."""

    SWEEP_INTERVAL = HEAD_TIMEOUT / 4

    def __init__(self) -> None:
        self.waiting: dict[HeadTimer, float] = {}  # armed timers, in the order they were armed

    async def run(self) -> None:
        while True:
            await trio.sleep(self.SWEEP_INTERVAL)
            limit = trio.current_time() - HEAD_TIMEOUT
            expired = []
            for timer, since in self.waiting.items():
                if since > limit:
                    break  # armed later than the ones before: none after it has expired
                expired.append(timer)
            for timer in expired:
                del self.waiting[timer]
                timer.expire()


class HeadTimer:
    """The time limit of one connection's request heads, armed while a head is awaited and
    disarmed while a request is served. When it expires (`HeadTimers.run`), a plain
    socket's wait is ended by notify_closing (the read raises ClosedResourceError, which
    ends the connection: no cancel scope per connection); a trio stream's (TLS)
    connection runs in `scope`, which is cancelled."""

    __slots__ = ("_waiting", "scope", "sock")

    def __init__(self, timers: HeadTimers, conn) -> None:
        self._waiting = timers.waiting
        self.sock = conn.sock if type(conn) is SocketConn else None
        self.scope = trio.CancelScope() if self.sock is None else None

    def arm(self) -> None:
        self._waiting[self] = trio.current_time()

    def disarm(self) -> None:
        self._waiting.pop(self, None)  # gone when it expired

    def expire(self) -> None:
        if self.scope is not None:
            self.scope.cancel()
        elif self.sock.fileno() != -1:
            trio.lowlevel.notify_closing(self.sock)


class HTTPConnection:
    """An API connection (`conn`: SocketConn or StreamConn) and the h11 connection that
    parses what it receives and frames what we send, request after request."""

    __slots__ = ("conn", "h11", "served")

    def __init__(self, conn):
        self.conn = conn
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.served = False  # a request was: the next one is not expected at once

    async def next_request(self, timer: HeadTimer) -> h11.Request | None:
        """The next request's head (its body, and what follows, stay in h11's buffer); None
        when the client closed the connection between requests. h11.RemoteProtocolError for
        a head HTTP/1.1 does not allow."""
        h = self.h11
        # Nothing received yet (a new connection, or nothing after the last request): no
        # need to ask h11. The first request's bytes often come with the connection; after
        # a response we wait for the socket first.
        buffered = h.trailing_data[0]
        event = h.next_event() if buffered else h11.NEED_DATA
        if event is h11.NEED_DATA:
            idle = self.served and not buffered
            timer.arm()
            try:
                while event is h11.NEED_DATA:
                    data = await self.conn.receive_some(RECEIVE_SIZE, idle=idle)
                    if not data and h.their_state is h11.IDLE and not h.trailing_data[0]:
                        return None  # closed between requests: h11 would only say so (~5 µs)
                    h.receive_data(data)  # b"": the end
                    idle = False
                    event = h.next_event()
            finally:
                timer.disarm()
        else:
            # Found in bytes already received (pipelined): let others run.
            await trio.lowlevel.checkpoint()
        if type(event) is not h11.Request:
            return None  # ConnectionClosed
        if event.http_version != b"1.1" and event.http_version != b"1.0":
            raise h11.RemoteProtocolError(f"HTTP/{event.http_version.decode()} is not supported")
        return event

    def received(self) -> bytes:
        """What h11 has received and not parsed: bytes after the current request's head or
        body (a hijacked or upgraded connection's first bytes)."""
        return self.h11.trailing_data[0]

    async def send_error(self, status: int, headers, body: bytes) -> None:
        """A complete response that ends the connection (a request h11 refused, a hijack's
        body too large), when no response was started."""
        h = self.h11
        if h.our_state is not h11.IDLE and h.our_state is not h11.SEND_RESPONSE:
            return
        try:
            data = b"".join((
                h.send(_response(status, [*headers, (b"connection", b"close")])),
                h.send(h11.Data(data=body)),
                h.send(_END),
            ))
        except h11.LocalProtocolError:
            log.exception("could not send a %d", status)
            return
        with trio.move_on_after(1):
            try:
                await self.conn.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass


def request_head(request: h11.Request) -> bytes:
    """`request`'s head as bytes, for a server that parses it again (websocket upgrades:
    hypercorn), written by h11 (HTTP/1.1 only)."""
    return h11.Connection(h11.CLIENT).send(request)


def upgrade_of(request: h11.Request) -> tuple[str, bool]:
    """(the Upgrade header's protocol, lower-case, or "", whether Connection lists `upgrade`)."""
    upgrade = None
    connection = b""
    for name, value in request.headers.raw_items():  # a list (iterating Headers is slow)
        if len(name) == 7 and name.lower() == b"upgrade":
            upgrade = value
        elif len(name) == 10 and name.lower() == b"connection":
            connection += b"," + value
    if upgrade is None:
        return "", False
    tokens = [token.strip() for token in connection.lower().split(b",")]
    return upgrade.decode("latin-1").strip().lower(), b"upgrade" in tokens


# ------------------------------------------------------------------------ responses

_date = [0, b""]
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}


def _date_header() -> bytes:
    now = int(time.time())
    if _date[0] != now:
        _date[0], _date[1] = now, email.utils.formatdate(now, usegmt=True).encode()
    return _date[1]


def _response(status: int, headers) -> h11.Response:
    return h11.Response(status_code=status, headers=[(b"date", _date_header()), *headers],
                        reason=_REASONS.get(status, b""))


_heads: dict = {}  # (status, *headers) → (h11.Response, has Content-Length), this second's
_heads_date = [b""]


def _response_head(status: int, headers) -> tuple[h11.Response, bool]:
    """A response's h11 event, reused while its status, headers and Date are the same (h11's
    events are immutable; building one validates every header): a burst answers the same
    few heads over and over."""
    date = _date_header()
    if _heads_date[0] is not date:
        _heads.clear()
        _heads_date[0] = date
    try:
        key = (status, *headers)
        cached = _heads.get(key)
    except TypeError:  # an unhashable header (ASGI allows lists)
        key = cached = None
    if cached is None:
        cached = (_response(status, headers), any(name.lower() == b"content-length" for name, _ in headers))
        if key is not None and len(_heads) < 64:
            _heads[key] = cached
    return cached


def _no_body(method: str, status: int) -> bool:
    return method == "HEAD" or status in (204, 304) or 100 <= status < 200


_CONTINUE = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
_END = h11.EndOfMessage()  # h11's events are immutable: one for every response


class _Exchange:
    """The ASGI receive/send pair of one request on a connection."""

    __slots__ = ("conn", "h11", "method", "body_done", "disconnected", "broken", "deferred", "status",
                 "started", "finished", "pending")

    def __init__(self, connection: HTTPConnection, method: str):
        self.conn = connection.conn
        self.h11 = connection.h11
        self.method = method
        self.body_done = False
        self.disconnected = False
        self.broken = False  # nothing more can be sent or read on this connection
        self.deferred: bytes | None = None  # the head of a complete response: sent with its body
        self.status = 0
        self.started = False
        self.finished = False
        self.pending = 0  # bytes of the next request received while serving this one

    # -- receive

    async def receive(self) -> dict:
        h = self.h11
        if not self.body_done and not self.disconnected:
            while True:
                try:
                    event = h.next_event()
                except h11.RemoteProtocolError:
                    self.broken = True
                    return self._disconnect()
                if event is h11.NEED_DATA:
                    if h.they_are_waiting_for_100_continue:
                        await self._send_bytes(h.send(_CONTINUE))
                    data = await self._receive_some()
                    if data is None:
                        return self._disconnect()
                    h.receive_data(data)
                    continue
                if type(event) is h11.Data:
                    return {"type": "http.request", "body": bytes(event.data), "more_body": True}
                if type(event) is h11.EndOfMessage:
                    self.body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                return self._disconnect()  # PAUSED or ConnectionClosed: cannot happen mid-body
        # The body is read: wait for the client to go away (what it sends meanwhile is the
        # next request's, kept in h11's buffer for it).
        while not self.disconnected and not self.finished:
            if self.pending >= MAX_PENDING:
                await trio.sleep_forever()
            data = await self._receive_some(idle=True)
            if data is None:
                return self._disconnect()
            self.pending += len(data)
            h.receive_data(data)
        return self._disconnect()

    async def _receive_some(self, idle: bool = False) -> bytes | None:
        """Bytes from the client; None once it closed or the connection broke."""
        if self.broken:
            return None
        try:
            data = await self.conn.receive_some(RECEIVE_SIZE, idle=idle)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.broken = True
            return None
        if not data:
            self.broken = True  # half-closed: no further request can come
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
            status = int(message["status"])
            headers = message.get("headers", ())
            response, has_length = _response_head(status, headers)  # h11 validates the headers
            self.started = True
            self.status = status
            head = self.h11.send(response)
            if has_length or _no_body(self.method, status):
                self.deferred = head  # goes out with its body in one write
            else:
                await self._send_bytes(head)  # streaming: the head goes out at once
        elif kind == "http.response.body":
            if not self.started or self.finished:
                raise RuntimeError("response body outside a response")
            h = self.h11
            out = []
            if self.deferred is not None:
                out.append(self.deferred)
                self.deferred = None
            body = message.get("body", b"")
            if body and not _no_body(self.method, self.status):
                out += h.send_with_data_passthrough(h11.Data(data=body))
            if not message.get("more_body", False):
                out.append(h.send(_END))
                self.finished = True
            if out:
                await self._send_bytes(b"".join(out) if len(out) > 1 else out[0])

    async def _send_bytes(self, data) -> None:
        if not data or self.broken:
            return
        try:
            await self.conn.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # As hypercorn: the app is not told through send(); receive() says it.
            self.broken = True

    async def error_500(self) -> None:
        await self.send({"type": "http.response.start", "status": 500,
                         "headers": [(b"content-length", b"0"), (b"connection", b"close")]})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def skip_body(self) -> bool:
        """Read and drop what the app left of the body (bounded): can the connection go on?"""
        h = self.h11
        # Usually the rest is here already (a body of 0 bytes: docker-py's POSTs without
        # one), then no time limit is needed.
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError:
                return False
            if type(event) is h11.EndOfMessage:
                return True
            if event is h11.NEED_DATA:
                break
            if type(event) is not h11.Data:
                return False
        with trio.move_on_after(DRAIN_TIMEOUT):
            while True:
                try:
                    event = h.next_event()
                except h11.RemoteProtocolError:
                    return False
                if event is h11.NEED_DATA:
                    data = await self._receive_some()
                    if data is None:
                        return False
                    h.receive_data(data)
                elif type(event) is h11.EndOfMessage:
                    return True
                elif type(event) is not h11.Data:
                    return False
        return False


def scope_of(request: h11.Request, method: str, target: str, tls: bool) -> dict:
    raw_path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.http_version.decode(),
        "method": method,
        "scheme": "https" if tls else "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": request.headers,  # h11's: (lower-case name, value) pairs
        "client": None,
        "server": None,
        "extensions": {},
    }


async def serve_request(app, connection: HTTPConnection, request: h11.Request, method: str, target: str, *,
                        tls: bool, route=None) -> bool:
    """Serve `request` (its head read by `connection.next_request`; `method` upper-case,
    `target` decoded) with the ASGI `app`; `route`: the app's resolution of it, when the
    server made one. True when the connection can carry another request (h11 is then ready
    for it), False when it must be closed."""
    exchange = _Exchange(connection, method)
    scope = scope_of(request, method, target, tls)
    if route is not None:
        scope["pyengine.route"] = route
    await app(scope, exchange.receive, exchange.send)
    if not exchange.started and not exchange.broken:
        log.error("%s %s ended without a response", method, target)
        await exchange.error_500()
    if exchange.broken or not exchange.finished:
        return False
    if exchange.disconnected and not exchange.body_done:
        return False
    h = connection.h11
    if h.our_state is not h11.DONE:
        return False  # MUST_CLOSE: HTTP/1.0, `Connection: close`
    if h.their_state is h11.SEND_BODY and not await exchange.skip_body():
        # The app answered without reading the whole body: skipped, as a keep-alive server
        # must, or the connection closes.
        return False
    if h.their_state is not h11.DONE:
        return False
    h.start_next_cycle()
    connection.served = True
    return True
