"""A small HTTP/1.1 client over a unix or TCP socket; h11 parses and frames.

The CLI is a fresh process per command, so what it imports is paid on every command: httpx
(with its CLI's rich/click) cost more to import than most commands take to run; h11 (~7 ms
here, and the daemon's parser already) does not. The Engine API needs little of
HTTP: one request per connection at a time, keep-alive, streamed responses, chunked uploads,
and the attach/exec upgrade. This module drives one `h11.Connection` per socket for that
(h11 frames requests and bodies, parses heads and Content-Length/chunked/close-delimited
bodies, says when a connection may be reused); connections are pooled so threads
(pyengine compose) can share a client.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from typing import Any, Iterable, Iterator

import h11

CHUNK = 65536
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_GONE = "Server disconnected without sending a response."


class ProtocolError(Exception):
    """The peer broke HTTP framing; `disconnected` when it closed before answering."""

    def __init__(self, message: str, disconnected: bool = False):
        super().__init__(message)
        self.disconnected = disconnected


class Headers(dict):
    """Response headers: lower-cased names, `get` case-insensitive (repeats keep the last)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(str(key).lower())


class _Conn:
    """One socket and the h11 client connection that speaks on it."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=CHUNK)
        self.reused = False

    def send(self, method: str, url: str, headers: dict[str, str],
             body: bytes | Iterable[bytes] | None) -> None:
        fields = [("Host", "docker"), *headers.items()]
        chunked = body is not None and not isinstance(body, bytes)
        if chunked:
            fields.append(("Transfer-Encoding", "chunked"))
        elif body is not None or method in ("POST", "PUT"):
            fields.append(("Content-Length", str(len(body or b""))))
        send = self.h11.send
        head = send(h11.Request(method=method, target=url, headers=fields)) or b""
        if chunked:
            self.sock.sendall(head)
            for piece in body:  # type: ignore[union-attr]
                if piece:
                    self.sock.sendall(send(h11.Data(data=piece)) or b"")
            self.sock.sendall(send(h11.EndOfMessage()) or b"")
            return
        data = (send(h11.Data(data=body)) or b"") if body else b""
        self.sock.sendall(head + data + (send(h11.EndOfMessage()) or b""))

    def next_event(self) -> Any:
        """h11's next event, reading the socket as it needs; its complaints as ProtocolError."""
        try:
            while True:
                event = self.h11.next_event()
                if event is not h11.NEED_DATA:
                    return event
                self.h11.receive_data(self.sock.recv(CHUNK))
        except h11.RemoteProtocolError as exc:
            raise ProtocolError(str(exc)) from None

    def head(self) -> h11.Response | h11.InformationalResponse:
        """The response head (a 101 ends it when we asked to upgrade; other 1xx are skipped).
        The peer closing (or resetting) before a byte of it is `disconnected`."""
        try:
            if not self.h11.trailing_data[0]:
                data = self.sock.recv(CHUNK)
                if not data:
                    raise ProtocolError(_GONE, disconnected=True)
                self.h11.receive_data(data)
        except ConnectionResetError:
            raise ProtocolError(_GONE, disconnected=True) from None
        while True:
            event = self.next_event()
            if isinstance(event, h11.Response) or (
                    isinstance(event, h11.InformationalResponse) and event.status_code == 101):
                return event
            if not isinstance(event, h11.InformationalResponse):  # 100 Continue: skipped
                raise ProtocolError(f"unexpected {type(event).__name__} before the response")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _headers(event: h11.Response | h11.InformationalResponse) -> Headers:
    return Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers)


class Response:
    """A response whose body is read on demand: `iter_raw()` streams it, `read()` takes it
    whole (then `content`, `text`, `json()`)."""

    def __init__(self, pool: "Pool | None", conn: _Conn, event: h11.Response, method: str):
        self._pool = pool
        self._conn: _Conn | None = conn
        self.status_code = event.status_code
        self.headers = _headers(event)
        self._content: bytes | None = None
        self._done = False
        if (method == "HEAD" or self.status_code in (204, 304)
                or self.headers.get("content-length") == "0"):
            self._next()  # h11 ends an empty body without reading: the connection goes back now

    def _finish(self) -> None:
        """The body's end: the connection is pooled if h11 says it can carry another request
        (and nothing stray follows), else closed."""
        self._done = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        c = conn.h11
        if (self._pool is not None and c.our_state is h11.DONE and c.their_state is h11.DONE
                and not c.trailing_data[0]):
            c.start_next_cycle()
            self._pool.put(conn)
        else:
            conn.close()

    def _next(self) -> bytes:
        """The next piece of the body (b"" at its end)."""
        conn = self._conn
        if self._done or conn is None:
            return b""
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._finish()
                return b""
            else:
                raise ProtocolError(f"unexpected {type(event).__name__} in a response body")

    def iter_raw(self) -> Iterator[bytes]:
        if self._content is not None:
            if self._content:
                yield self._content
            return
        while True:
            data = self._next()
            if not data:
                return
            yield data

    def read(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_raw())
        return self._content

    @property
    def content(self) -> bytes:
        return self.read()

    @property
    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.read())

    def close(self) -> None:
        """Done with it: an unfinished body's connection is dropped, not reused."""
        if not self._done:
            self._done = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


class Pool:
    """Idle keep-alive connections to one address, shared by threads."""

    def __init__(self, scheme: str, address: str, connect_timeout: float = 30.0):
        self.scheme = scheme
        self.address = address
        self.connect_timeout = connect_timeout
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    def connect(self) -> socket.socket:
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.connect_timeout)
                sock.connect(self.address)
            except BaseException:
                sock.close()
                raise
        else:
            h, _, p = self.address.rpartition(":")
            sock = socket.create_connection((h.strip("[]"), int(p)), self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        return sock

    def get(self) -> _Conn:
        with self._lock:
            if self._idle:
                conn = self._idle.pop()
                conn.reused = True
                return conn
        return _Conn(self.connect())

    def put(self, conn: _Conn) -> None:
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def target(prefix: str, path: str, params: list[tuple[str, str]]) -> str:
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return urllib.parse.quote(prefix + path, safe=_PATH_SAFE) + (f"?{query}" if query else "")


def request(pool: Pool, method: str, url: str, *, headers: dict[str, str],
            body: bytes | Iterable[bytes] | None) -> Response:
    """Send one request and read the response head. A reused keep-alive connection that the
    server closed meanwhile is retried once on a new one (only when nothing came back)."""
    for attempt in (0, 1):
        conn = pool.get()
        try:
            conn.send(method, url, headers, body)
            event = conn.head()  # not a 101: h11 refuses one to a request that asked for none
            return Response(pool, conn, event, method)  # type: ignore[arg-type]
        except (ProtocolError, OSError) as exc:
            conn.close()
            stale = conn.reused and attempt == 0 and (
                isinstance(exc, OSError) or getattr(exc, "disconnected", False))
            if not stale or not isinstance(body, (bytes, type(None))):
                raise
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable")


def upgrade(sock: socket.socket, method: str, url: str, *, headers: dict[str, str],
            body: bytes) -> tuple[int, Headers, bytes]:
    """Send a request asking to upgrade `sock` to a raw stream (`Upgrade: tcp`) and read the
    answer: (status, headers, data). On a 101 — or a 200, which older paths answer with the
    stream as a body ended by the connection's end — `data` is what already arrived after
    the head, and the socket is the caller's raw stream; on another status, `data` is the
    whole body (the socket is then done)."""
    conn = _Conn(sock)
    conn.send(method, url, {**headers, "Connection": "Upgrade", "Upgrade": "tcp"}, body)
    event = conn.head()
    if event.status_code in (101, 200):
        return event.status_code, _headers(event), bytes(conn.h11.trailing_data[0])
    assert isinstance(event, h11.Response)
    resp = Response(None, conn, event, method)
    return resp.status_code, resp.headers, resp.read()
