"""A small synchronous client for the Docker Engine API, as the pyengine CLI needs it.

Plain requests go through a small HTTP/1.1 client (_http: unix socket or TCP, pooled
keep-alive connections, safe to share between threads); attach and exec-start hijack the
connection (_http.upgrade: the request with `Connection: Upgrade` / `Upgrade: tcp`, the
`101 UPGRADED` head read by h11) and then own the byte stream in both directions.
"""

from __future__ import annotations

import json
import socket
from contextlib import contextmanager
from typing import Any, Iterator

from engine import API_VERSION

from . import _http

PREFIX = f"/v{API_VERSION}"


class ClientError(Exception):
    """An error answered by the daemon (status >= 400), or a failure to reach it."""

    def __init__(self, message: str, status: int | None = None, *, from_daemon: bool = True):
        super().__init__(message)
        self.message = message
        self.status = status
        self.from_daemon = from_daemon

    @property
    def not_found(self) -> bool:
        return self.status == 404

    def __str__(self) -> str:
        if self.from_daemon:
            return f"Error response from daemon: {self.message}"
        return self.message


class ConnectError(ClientError):
    def __init__(self, host: str):
        super().__init__(
            f"Cannot connect to the pyengine daemon at {host}. Is the daemon running?",
            from_daemon=False,
        )


def parse_host(host: str) -> tuple[str, str]:
    """"unix:///path" -> ("unix", "/path"); "tcp://h:p" -> ("tcp", "h:p"); a bare path is unix."""
    if host.startswith("unix://"):
        return "unix", host[len("unix://") :]
    if host.startswith("tcp://"):
        addr = host[len("tcp://") :].rstrip("/")
        if ":" not in addr.rsplit("]", 1)[-1]:
            addr += ":2375"
        return "tcp", addr
    if host.startswith("http://"):
        return "tcp", host[len("http://") :].rstrip("/")
    if host.startswith("/"):
        return "unix", host
    raise ValueError(f"unsupported host address: {host}")


def error_message(body: bytes, status: int) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text or f"HTTP {status}"
    if isinstance(doc, dict) and "message" in doc:
        return str(doc["message"])
    return text


def _params(params: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Drop None values, render bools as 1/0 and expand lists into repeated keys."""
    out: list[tuple[str, str]] = []
    for k, v in (params or {}).items():
        if v is None:
            continue
        if isinstance(v, bool):
            out.append((k, "1" if v else "0"))
        elif isinstance(v, (list, tuple)):
            out.extend((k, str(x)) for x in v)
        else:
            out.append((k, str(v)))
    return out


class Hijacked:
    """A hijacked connection: `recv()` yields stream bytes (first any bytes read past the
    response head), `send()` writes, `close_write()` half-closes."""

    def __init__(self, sock: socket.socket, leftover: bytes, content_type: str = ""):
        self.sock = sock
        self._leftover = leftover
        self.content_type = content_type

    def recv(self, n: int = 65536) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover, b""
            return data
        try:
            return self.sock.recv(n)
        except (ConnectionResetError, OSError):
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def shutdown(self) -> None:
        """Both directions: a recv blocked in another thread returns b""."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Hijacked":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    def __init__(self, host: str, timeout: float | None = None):
        self.host = host
        self.scheme, self.address = parse_host(host)
        self._pool = _http.Pool(self.scheme, self.address, connect_timeout=30.0)

    def close(self) -> None:
        self._pool.close()

    # -- plain requests -------------------------------------------------------------------

    def _send(self, method: str, path: str, params: dict | None, json_body: Any,
              content: Any, headers: dict | None) -> _http.Response:
        hdrs = {"User-Agent": "pyengine-cli"}
        body = content
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        hdrs.update(headers or {})
        try:
            return _http.request(self._pool, method, _http.target(PREFIX, path, _params(params)),
                                 headers=hdrs, body=body)
        except (FileNotFoundError, ConnectionRefusedError, socket.gaierror, TimeoutError):
            raise ConnectError(self.host) from None
        except _http.ProtocolError as exc:
            if exc.disconnected:
                raise ConnectError(self.host) from None
            raise ClientError(f"error during connect: {exc}", from_daemon=False) from None
        except OSError as exc:
            raise ClientError(f"error during connect: {exc}", from_daemon=False) from None

    def request(self, method: str, path: str, *, params: dict | None = None, json_body: Any = None,
                content: Any = None, headers: dict | None = None) -> _http.Response:
        resp = self._send(method, path, params, json_body, content, headers)
        try:
            resp.read()
        except (_http.ProtocolError, OSError) as exc:
            resp.close()
            raise ClientError(f"error reading the response: {exc}", from_daemon=False) from None
        self._check(resp)
        return resp

    def _check(self, resp: _http.Response) -> None:
        if resp.status_code >= 400:
            resp.read()
            raise ClientError(error_message(resp.content, resp.status_code), resp.status_code)

    def get(self, path: str, **kw: Any) -> Any:
        return _json(self.request("GET", path, **kw))

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return _json(self.request("POST", path, json_body=body, **kw))

    def put(self, path: str, **kw: Any) -> Any:
        return _json(self.request("PUT", path, **kw))

    def delete(self, path: str, **kw: Any) -> Any:
        return _json(self.request("DELETE", path, **kw))

    def head(self, path: str, **kw: Any) -> _http.Response:
        return self.request("HEAD", path, **kw)

    @contextmanager
    def stream(self, method: str, path: str, *, params: dict | None = None,
               json_body: Any = None, content: Any = None,
               headers: dict | None = None) -> Iterator[_http.Response]:
        """A streaming response; entering returns once the response headers have arrived."""
        resp = self._send(method, path, params, json_body, content, headers)
        try:
            self._check(resp)
            yield resp
        finally:
            resp.close()

    # -- hijacking ---------------------------------------------------------------------------

    def connect_raw(self) -> socket.socket:
        try:
            if self.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.address)
            else:
                h, _, p = self.address.rpartition(":")
                sock = socket.create_connection((h.strip("[]"), int(p)))
        except OSError:
            raise ConnectError(self.host) from None
        return sock

    def hijack(self, path: str, params: dict | None = None, body: Any = None) -> Hijacked:
        """POST `path` asking to upgrade to a raw stream; returns the hijacked connection."""
        payload = json.dumps(body).encode() if body is not None else b""
        hdrs = {"User-Agent": "pyengine-cli", "Content-Type": "application/json"}
        sock = self.connect_raw()
        try:
            try:
                status, headers, data = _http.upgrade(
                    sock, "POST", _http.target(PREFIX, path, _params(params)),
                    headers=hdrs, body=payload)
            except _http.ProtocolError as exc:
                if exc.disconnected:
                    raise ClientError("daemon closed the connection before answering",
                                      from_daemon=False) from None
                raise ClientError(f"malformed response: {exc}", from_daemon=False) from None
            if status >= 400:
                raise ClientError(error_message(data, status), status)
            if status not in (101, 200):
                raise ClientError(f"unable to upgrade to tcp, received {status}",
                                  from_daemon=False)
            return Hijacked(sock, data, headers.get("content-type", ""))
        except BaseException:
            sock.close()
            raise


def _json(resp: _http.Response) -> Any:
    if resp.status_code in (204, 304) or not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return resp.text
