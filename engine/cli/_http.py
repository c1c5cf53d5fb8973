"""A small HTTP/1.1 client over a unix or TCP socket, standard library only.

The CLI is a fresh process per command, so what it imports is paid on every command: httpx
(with its CLI's rich/click) cost more to import than most commands take to run. The Engine
API needs little of HTTP: one request per connection at a time, keep-alive, bodies framed by
Content-Length, chunked or the connection's end, streamed responses, chunked uploads. This
module does that; connections are pooled so threads (pyengine compose) can share a client.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from typing import Any, Iterable, Iterator

CHUNK = 65536
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


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
    """One socket with a read buffer."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""
        self.reused = False

    def fill(self) -> bool:
        data = self.sock.recv(CHUNK)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > CHUNK:
                raise ProtocolError("header line too long")
            if not self.fill():
                raise ProtocolError("connection closed mid-response")

    def read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes: what is buffered, else one recv (b"" at the end)."""
        if not self.buf and not self.fill():
            return b""
        data, self.buf = self.buf[:limit], self.buf[limit:]
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Response:
    """A response whose body is read on demand: `iter_raw()` streams it, `read()` takes it
    whole (then `content`, `text`, `json()`)."""

    def __init__(self, pool: "Pool", conn: _Conn, status: int, headers: Headers,
                 method: str):
        self._pool = pool
        self._conn: _Conn | None = conn
        self.status_code = status
        self.headers = headers
        self._content: bytes | None = None
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        length = headers.get("content-length")
        self._remaining: int | None = None  # bytes left of a Content-Length body
        self._chunk_left = 0  # bytes left of the current chunk
        self._done = False
        bodiless = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        # reusable when the body's end is known and the server did not say it closes
        self._keep = headers.get("connection", "").lower() != "close" and (
            bodiless or self._chunked or length is not None)
        if bodiless:
            self._finish()
        elif not self._chunked and length is not None:
            self._remaining = int(length)
            if self._remaining == 0:
                self._finish()

    def _finish(self) -> None:
        self._done = True
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._keep and not conn.buf:
                self._pool.put(conn)
            else:
                conn.close()

    def _next(self) -> bytes:
        """The next piece of the body (b"" at its end)."""
        conn = self._conn
        if self._done or conn is None:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                line = conn.readline()
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {line[:40]!r}") from None
                if size == 0:
                    while conn.readline():  # trailers, then the empty line
                        pass
                    self._finish()
                    return b""
                self._chunk_left = size
            data = conn.read_some(self._chunk_left)
            if not data:
                raise ProtocolError("connection closed mid-chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                if conn.readline():
                    raise ProtocolError("chunk not followed by CRLF")
            return data
        if self._remaining is not None:
            data = conn.read_some(min(self._remaining, CHUNK))
            if not data:
                raise ProtocolError("connection closed before the body's end")
            self._remaining -= len(data)
            if self._remaining == 0:
                self._finish()
            return data
        data = conn.read_some(CHUNK)  # body delimited by the connection's end
        if not data:
            self._finish()
        return data

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
            _send(conn, method, url, headers, body)
            return _read_head(pool, conn, method)
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


def _send(conn: _Conn, method: str, url: str, headers: dict[str, str],
          body: bytes | Iterable[bytes] | None) -> None:
    lines = [f"{method} {url} HTTP/1.1", "Host: docker"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    chunked = body is not None and not isinstance(body, bytes)
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not chunked:
        conn.sock.sendall(head + (body or b""))
        return
    conn.sock.sendall(head)
    for piece in body:  # type: ignore[union-attr]
        if piece:
            conn.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
    conn.sock.sendall(b"0\r\n\r\n")


def _read_head(pool: Pool, conn: _Conn, method: str) -> Response:
    try:
        if not conn.buf and not conn.fill():
            raise ProtocolError("Server disconnected without sending a response.",
                                disconnected=True)
    except ConnectionResetError:
        raise ProtocolError("Server disconnected without sending a response.",
                            disconnected=True) from None
    while True:
        status_line = conn.readline().decode("latin-1")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"malformed status line {status_line[:60]!r}")
        try:
            status = int(parts[1])
        except ValueError:
            raise ProtocolError(f"malformed status line {status_line[:60]!r}") from None
        headers = Headers()
        while True:
            line = conn.readline()
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if status != 100:  # 100 Continue: the real answer follows
            return Response(pool, conn, status, headers, method)
