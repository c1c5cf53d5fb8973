"""Plain HTTP/1.1 on an API connection: request heads and bodies parsed here, responses framed
here, the ASGI app driven over the same connection, which then carries the next request
(keep-alive, as dockerd serves it).

The server (engine/api/_server.py) reads each request head with `read_head`, sends hijacks and
websocket upgrades elsewhere, and hands everything else to `serve_request`.

Why not h11 (used before) or hypercorn: a burst of short-lived containers is four requests per
container (create, start, wait, remove), three of them on a fresh connection (docker-py keeps
one connection pool per URL), and the handlers are small. h11's state machine and header
validation cost ~60 µs per exchange and trio's socket streams yield to the scheduler on every
successful send and receive; together with the ASGI plumbing a `/_ping` cost ~280 µs of daemon
CPU. What the API needs of HTTP/1.1 is small and fixed: Content-Length and chunked bodies,
`Expect: 100-continue`, keep-alive with pipelining, HTTP/1.0 clients, chunked streaming
responses.

What the server guarantees (as hypercorn and h11 did): the response head goes out as soon as
the app starts a streaming response (no Content-Length: `docker wait` and event streams rely
on it); no body for HEAD, 204 and 304; `100 Continue` when the client waits for it; a 500 when
the app ends without answering; `http.disconnect` from `receive()` once the client has gone; a
Date header; malformed heads, bodies and oversized heads are refused (400) and the connection
closed; a body the app did not read is skipped (bounded) before the next request.

Connections (`SocketConn`, `StreamConn`): a plain socket is driven directly — a send or
receive that can complete does so without a trip through trio's scheduler, one that cannot
waits in epoll (`trio.lowlevel.wait_readable/writable`, which are checkpoints). The server
yields once per request it reads from a buffer without waiting, so a client pipelining
requests cannot starve other tasks. TLS connections keep their trio stream.
"""

from __future__ import annotations

import email.utils
import http
import logging
import math
import re
import socket
import time
from urllib.parse import unquote

import trio

__all__ = ["ProtocolError", "RequestHead", "SocketConn", "StreamConn", "parse_head", "read_head", "serve_request"]

log = logging.getLogger("engine.api")

RECEIVE_SIZE = 65536
MAX_HEAD = 64 * 1024
#: Seconds for a complete request head (also: how long an idle keep-alive connection stays).
HEAD_TIMEOUT = 60.0
#: Bytes of a next (pipelined) request we keep while watching for a disconnect.
MAX_PENDING = 64 * 1024
#: A chunk-size or trailer line longer than this is refused.
MAX_LINE = 8 * 1024
#: Seconds we skip an unread request body before the next request (else: close).
DRAIN_TIMEOUT = 5.0


class ProtocolError(Exception):
    """The client broke HTTP/1.1: answered with a 400 and the connection closed."""


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
        if self._stream is not None:
            await self._stream.aclose()
        elif self.sock.fileno() != -1:
            trio.lowlevel.notify_closing(self.sock)
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


# ------------------------------------------------------------------------ request heads

_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP/1\.([01])")
_HEAD_END = re.compile(rb"\n\r?\n")
_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
#: Header lines: a token, a colon, a value of visible characters, spaces and tabs (no line
#: folding: a line may not start with white space), each ended by LF or CRLF.
_HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*\r?\n)*")


class RequestHead:
    """A parsed request head. `headers`: (lower-case name, value) bytes pairs, in order."""

    __slots__ = ("method", "target", "http_version", "headers", "raw", "content_length", "chunked",
                 "keep_alive", "expect_continue", "upgrade", "connection_upgrade")

    def __init__(self, method: str, target: str, http_version: str, headers: list[tuple[bytes, bytes]],
                 raw: bytes):
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.raw = raw  # the head's bytes as received (read_head: with the blank line)
        length = None
        transfer = []
        connection: list[bytes] = []
        expect = b""
        upgrade = b""
        host = False
        for name, value in headers:
            if name == b"content-length":
                if not _DIGITS.fullmatch(value):
                    raise ProtocolError("bad Content-Length")
                if length is not None and int(value) != length:
                    raise ProtocolError("conflicting Content-Length headers")
                length = int(value)
            elif name == b"transfer-encoding":
                transfer += [t.strip().lower() for t in value.split(b",") if t.strip()]
            elif name == b"connection":
                connection += [t.strip().lower() for t in value.split(b",")]
            elif name == b"expect":
                expect = value.lower()
            elif name == b"upgrade":
                upgrade = value.strip().lower()
            elif name == b"host":
                host = True
        if http_version == "1.1" and not host:
            raise ProtocolError("Missing mandatory Host: header")
        if transfer and transfer != [b"chunked"]:
            raise ProtocolError("Only Transfer-Encoding: chunked is supported")
        self.chunked = bool(transfer)  # wins over Content-Length (RFC 9112 6.3)
        self.content_length = 0 if self.chunked or length is None else length
        self.keep_alive = http_version == "1.1" and b"close" not in connection
        self.expect_continue = http_version == "1.1" and expect == b"100-continue"
        self.upgrade = upgrade.decode("latin-1")
        self.connection_upgrade = b"upgrade" in connection

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.target}>"


def parse_head(data: bytes) -> RequestHead:
    """One request head (the bytes up to and without the blank line ending it)."""
    first, _, block = data.partition(b"\n")
    if first.endswith(b"\r"):
        first = first[:-1]
    m = _REQUEST_LINE.fullmatch(first)
    if m is None:
        raise ProtocolError("malformed request line")
    headers = []
    if block:
        if not block.endswith(b"\n"):
            block += b"\n"
        if _HEADER_BLOCK.fullmatch(block) is None:  # every line at once: a token, a colon, a value
            raise ProtocolError("malformed header line")
        for line in block.split(b"\n")[:-1]:
            name, _, value = line.partition(b":")
            headers.append((name.lower(), value.strip(b" \t\r")))
    return RequestHead(m.group(1).decode("ascii").upper(), m.group(2).decode("latin-1"), "1." + chr(m.group(3)[0]),
                       headers, data)


class HeadTimer:
    """The time limit of one connection's request heads: one cancel scope around the
    connection whose deadline is armed while a head is awaited and disarmed while the
    request is served (cheaper than a scope per request)."""

    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope = trio.CancelScope()

    def arm(self) -> None:
        self.scope.deadline = trio.current_time() + HEAD_TIMEOUT

    def disarm(self) -> None:
        self.scope.deadline = math.inf


async def read_head(conn, buf: bytearray, timer: HeadTimer, *, first: bool = False) -> RequestHead | None:
    """The next request head from `buf` (bytes already received) and the connection; the
    head's bytes are taken out of `buf`, what follows stays. None when the client closed
    the connection between requests. `first`: the connection's first request (its bytes
    may have arrived with the connection)."""
    searched = 0
    armed = False
    try:
        while True:
            while buf[:1] in (b"\r", b"\n") and buf:  # blank lines before a request line
                del buf[:1]
                searched = 0
            m = _HEAD_END.search(buf, max(0, searched - 2))
            if m is not None:
                if m.end() > MAX_HEAD:
                    raise ProtocolError("request head too large")
                raw = bytes(buf[:m.end()])
                del buf[:m.end()]
                if not armed:
                    # Served from the buffer without waiting (pipelined): let others run.
                    await trio.lowlevel.checkpoint()
                head = parse_head(raw[:m.start() + 1])
                head.raw = raw
                return head
            if len(buf) > MAX_HEAD:
                raise ProtocolError("request head too large")
            searched = len(buf)
            if not armed:
                timer.arm()
                armed = True
            data = await conn.receive_some(RECEIVE_SIZE, idle=not first and not buf)
            if not data:
                if buf:
                    raise ProtocolError("connection closed in the middle of a request head")
                return None
            buf += data
    finally:
        if armed:
            timer.disarm()


# ------------------------------------------------------------------------ request bodies

NEED_DATA = object()
END = object()


class Body:
    """The framing of one request body. `next(buf)` takes what it can from `buf`: bytes of
    the body, NEED_DATA, or END once the body is complete."""

    __slots__ = ("chunked", "remaining", "state", "trailer_bytes")

    def __init__(self, head: RequestHead):
        self.chunked = head.chunked
        self.remaining = head.content_length  # Content-Length left, or of the current chunk
        self.state = "size" if head.chunked else "length"
        self.trailer_bytes = 0

    @property
    def done(self) -> bool:
        return self.state == "done" or self.state == "length" and self.remaining == 0

    def next(self, buf: bytearray):
        while True:
            state = self.state
            if state == "length":
                if self.remaining == 0:
                    self.state = "done"
                    return END
                if not buf:
                    return NEED_DATA
                n = min(self.remaining, len(buf))
                data = bytes(buf[:n])
                del buf[:n]
                self.remaining -= n
                return data
            if state == "data":
                if not buf:
                    return NEED_DATA
                n = min(self.remaining, len(buf))
                data = bytes(buf[:n])
                del buf[:n]
                self.remaining -= n
                if self.remaining == 0:
                    self.state = "data-end"
                return data
            if state == "done":
                return END
            line = self._line(buf)
            if line is None:
                return NEED_DATA
            if state == "size":
                size = line.split(b";", 1)[0].strip(b" \t")
                if not _HEX.fullmatch(size):
                    raise ProtocolError("bad chunk size")
                self.remaining = int(size, 16)
                self.state = "data" if self.remaining else "trailer"
            elif state == "data-end":
                if line:
                    raise ProtocolError("chunk data longer than its size")
                self.state = "size"
            else:  # trailer: skipped up to the blank line
                if not line:
                    self.state = "done"
                    return END
                self.trailer_bytes += len(line)
                if self.trailer_bytes > MAX_HEAD:
                    raise ProtocolError("chunked trailer too large")

    @staticmethod
    def _line(buf: bytearray) -> bytes | None:
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > MAX_LINE:
                raise ProtocolError("chunked framing line too long")
            return None
        line = bytes(buf[:end])
        del buf[:end + 1]
        return line[:-1] if line.endswith(b"\r") else line


# ------------------------------------------------------------------------ responses

_date = [0, b""]
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}


def _date_header() -> bytes:
    now = int(time.time())
    if _date[0] != now:
        _date[0], _date[1] = now, email.utils.formatdate(now, usegmt=True).encode()
    return _date[1]


def _no_body(method: str, status: int) -> bool:
    return method == "HEAD" or status in (204, 304) or 100 <= status < 200


def response_head(status: int, headers, *, chunked: bool, close: bool) -> bytes:
    lines = b"".join([name + b": " + value + b"\r\n" for name, value in headers])
    if lines.count(b"\n") != len(headers) or lines.count(b"\r") != len(headers):
        raise ValueError(f"a line break inside a response header: {headers!r}")
    return b"".join((
        b"HTTP/1.1 %d %s\r\ndate: %s\r\n" % (status, _REASONS.get(status, b""), _date_header()),
        lines,
        b"transfer-encoding: chunked\r\n" if chunked else b"",
        b"connection: close\r\n" if close else b"",
        b"\r\n",
    ))


class _Exchange:
    """The ASGI receive/send pair of one request on a connection."""

    def __init__(self, conn, head: RequestHead, buf: bytearray):
        self.conn = conn
        self.head = head
        self.buf = buf  # the connection's received bytes: this body's, then the next request's
        self.body = Body(head)
        self.method = head.method
        self.body_done = False
        self.got_body = False
        self.continue_sent = False
        self.disconnected = False
        self.broken = False  # nothing more can be sent or read on this connection
        self.deferred: bytes | None = None  # the head of a complete response: sent with its body
        self.status = 0
        self.started = False
        self.finished = False
        self.chunked = False
        self.close = not head.keep_alive

    # -- receive

    async def receive(self) -> dict:
        if not self.body_done and not self.disconnected:
            while True:
                try:
                    data = self.body.next(self.buf)
                except ProtocolError:
                    self.broken = True
                    return self._disconnect()
                if data is NEED_DATA:
                    if self.head.expect_continue and not self.got_body and not self.continue_sent \
                            and not self.started:
                        self.continue_sent = True
                        await self._send_bytes(b"HTTP/1.1 100 Continue\r\n\r\n")
                    more = await self._receive_some()
                    if more is None:
                        return self._disconnect()
                    self.buf += more
                    continue
                if data is END:
                    self.body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                self.got_body = True
                if self.body.done:  # the last bytes of a Content-Length body
                    self.body_done = True
                    self.body.state = "done"
                    return {"type": "http.request", "body": data, "more_body": False}
                return {"type": "http.request", "body": data, "more_body": True}
        # The body is read: wait for the client to go away (what it sends meanwhile is the
        # next request's, kept for it).
        while not self.disconnected and not self.finished:
            if len(self.buf) >= MAX_PENDING:
                await trio.sleep_forever()
            more = await self._receive_some(idle=True)
            if more is None:
                return self._disconnect()
            self.buf += more
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
            self.started = True
            self.status = status = int(message["status"])
            headers = message.get("headers", ())
            complete = _no_body(self.method, status)
            for name, value in headers:
                lname = name.lower()
                if lname == b"content-length":
                    complete = True
                elif lname == b"connection" and b"close" in value.lower():
                    self.close = True
            if not complete:
                if self.head.http_version == "1.1":
                    self.chunked = True
                else:
                    self.close = True  # HTTP/1.0: the body ends with the connection
            head = response_head(status, headers, chunked=self.chunked,
                                 close=self.close and not any(n.lower() == b"connection" for n, _ in headers))
            if complete:
                self.deferred = head  # goes out with its body in one write
            else:
                await self._send_bytes(head)  # streaming: the head goes out at once
        elif kind == "http.response.body":
            if not self.started or self.finished:
                raise RuntimeError("response body outside a response")
            out = []
            if self.deferred is not None:
                out.append(self.deferred)
                self.deferred = None
            body = message.get("body", b"")
            if body and not _no_body(self.method, self.status):
                if self.chunked:
                    out += [b"%x\r\n" % len(body), body, b"\r\n"]
                else:
                    out.append(body)
            if not message.get("more_body", False):
                if self.chunked:
                    out.append(b"0\r\n\r\n")
                self.finished = True
            if out:
                await self._send_bytes(b"".join(out) if len(out) > 1 else out[0])

    async def _send_bytes(self, data: bytes) -> None:
        if not data or self.broken:
            return
        try:
            await self.conn.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # As hypercorn: the app is not told through send(); receive() says it.
            self.broken = True

    async def error_500(self) -> None:
        self.close = True
        await self.send({"type": "http.response.start", "status": 500,
                         "headers": [(b"content-length", b"0"), (b"connection", b"close")]})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def skip_body(self) -> bool:
        """Read and drop what the app left of the body (bounded): can the connection go on?"""
        with trio.move_on_after(DRAIN_TIMEOUT):
            while True:
                try:
                    data = self.body.next(self.buf)
                except ProtocolError:
                    return False
                if data is END:
                    return True
                if data is NEED_DATA:
                    more = await self._receive_some()
                    if more is None:
                        return False
                    self.buf += more
        return False


def scope_of(head: RequestHead, tls: bool) -> dict:
    raw_path, _, query = head.target.partition("?")
    raw_path_bytes = raw_path.encode("latin-1")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": head.http_version,
        "method": head.method,
        "scheme": "https" if tls else "http",
        "path": unquote(raw_path),
        "raw_path": raw_path_bytes,
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": head.headers,
        "client": None,
        "server": None,
        "extensions": {},
    }


async def serve_request(app, conn, head: RequestHead, buf: bytearray, *, tls: bool, route=None) -> bool:
    """Serve `head` (its bytes already taken from `buf`) with the ASGI `app`; `route`: the
    app's resolution of it, when the server made one. True when the connection can carry
    another request (its bytes so far are left in `buf`), False when it must be closed."""
    exchange = _Exchange(conn, head, buf)
    scope = scope_of(head, tls)
    if route is not None:
        scope["pyengine.route"] = route
    await app(scope, exchange.receive, exchange.send)
    if not exchange.started and not exchange.broken:
        log.error("%s %s ended without a response", head.method, head.target)
        await exchange.error_500()
    if exchange.broken or not exchange.finished or exchange.close:
        return False
    if exchange.disconnected and not exchange.body_done:
        return False
    if not exchange.body_done and not exchange.body.done:
        # The app answered without reading the whole body: skip it, as a keep-alive server
        # must, or close.
        return await exchange.skip_body()
    return True
