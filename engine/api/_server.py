"""The API listener(s).

    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(serve_api, app, ["unix:///run/pyengine.sock"])

Per connection we read each request head ourselves (h11, size and time limits), then:

    hijack route (attach, exec start) ──► read the body, keep any extra bytes the client sent,
                                           app.serve_hijack(…, HijackedStream); the connection
                                           is the handler's from then on
    websocket upgrade                  ──► hypercorn serves the connection (it replays the bytes
                                           we peeked)
    anything else                      ──► _http1.serve_request drives the ASGI app over the
                                           same h11 connection; then the next request (keep-alive)

Why not hypercorn alone: a 101 sent through ASGI switches hypercorn's h11 state and the
client's bytes never reach the app; the docker CLI refuses a 200 for attach.
"""

from __future__ import annotations

import errno
import logging
import os
import socket as _socket
import ssl
import stat
from collections.abc import Sequence
from urllib.parse import urlsplit

import h11
import trio

from ._hijack import HijackedStream
from ._http1 import serve_request
from ._hypercorn_bridge import HypercornBridge
from ._responses import json_response

__all__ = ["serve_api", "server_tls_context"]

log = logging.getLogger("engine.api")

MAX_HEAD = 64 * 1024
HEAD_TIMEOUT = 60.0        # seconds for a complete request head (also: idle keep-alive)
TLS_HANDSHAKE_TIMEOUT = 30.0
MAX_HIJACK_BODY = 1024 * 1024
UNIX_SOCKET_MODE = 0o660


def server_tls_context(certfile: str, keyfile: str, cafile: str | None = None,
                       verify: bool = False) -> ssl.SSLContext:
    """dockerd's --tls/--tlsverify: with `verify`, clients need a cert signed by `cafile`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    if verify:
        if not cafile:
            raise ValueError("--tlsverify needs a CA certificate")
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# ------------------------------------------------------------------------ listeners


def _remove_stale_socket(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)  # stale: nobody listens
        return
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"another daemon is listening on {path}")


async def _open_unix_listener(path: str) -> trio.SocketListener:
    def prepare() -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        _remove_stale_socket(path)

    await trio.to_thread.run_sync(prepare)
    sock = trio.socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        os.chmod(path, UNIX_SOCKET_MODE)
        sock.listen(_socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def _open_listeners(host: str, tls: ssl.SSLContext | None):
    """→ (listeners, addresses, unix_path or None)"""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        listener = await _open_unix_listener(path)
        return [listener], [f"unix://{path}"], path
    if host.startswith("fd://"):
        raise ValueError("fd:// (socket activation) is not supported yet")
    if not host.startswith("tcp://"):
        raise ValueError(f"unsupported host {host!r}: want unix:///path or tcp://host:port")
    parts = urlsplit(host)
    hostname = parts.hostname or "127.0.0.1"
    port = parts.port if parts.port is not None else (2376 if tls else 2375)
    listeners = await trio.open_tcp_listeners(port, host=hostname)
    addresses = []
    for l in listeners:
        addr = l.socket.getsockname()
        h = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        addresses.append(f"tcp://{h}:{addr[1]}")
    if tls is not None:
        listeners = [trio.SSLListener(l, tls, https_compatible=True) for l in listeners]
    elif hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning("API listening on %s without TLS: anyone who reaches it is root", host)
    return listeners, addresses, None


# ------------------------------------------------------------------------ per connection


class _Head:
    def __init__(self, conn: h11.Connection, request: h11.Request, raw: bytes):
        self.conn = conn
        self.request = request
        self.raw = raw


async def _read_head(stream, initial: bytes = b"") -> _Head | None:
    """The next request head; `initial`: bytes of it already read with the previous request."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    raw = bytearray(initial)
    if initial:
        conn.receive_data(initial)
    with trio.fail_after(HEAD_TIMEOUT):
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                return _Head(conn, event, bytes(raw))
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                raw += data
                conn.receive_data(data)
                continue
            return None  # ConnectionClosed before a request


def _header(req: h11.Request, name: bytes) -> str:
    for k, v in req.headers:
        if k == name:
            return v.decode("latin-1").strip()
    return ""


class ConnectionHandler:
    def __init__(self, app, bridge: HypercornBridge):
        self.app = app
        self.bridge = bridge

    async def __call__(self, stream) -> None:
        try:
            await self._serve(stream)
        except trio.TooSlowError:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        except h11.RemoteProtocolError as e:
            await self._send_bad_request(stream, e)
        except Exception:
            log.exception("API connection handler failed")
        except BaseExceptionGroup as group:
            rest = group.split(trio.Cancelled)[1]
            if rest is not None:
                log.error("API connection handler failed", exc_info=rest)
            cancelled = group.split(trio.Cancelled)[0]
            if cancelled is not None:
                raise cancelled
        finally:
            with trio.move_on_after(1, shield=True):
                try:
                    await stream.aclose()
                except Exception:
                    pass

    async def _send_bad_request(self, stream, exc) -> None:
        with trio.move_on_after(1):
            try:
                await stream.send_all(json_response({"message": f"bad request: {exc}"}, 400).to_bytes())
            except Exception:
                pass

    async def _serve(self, stream) -> None:
        if isinstance(stream, trio.SSLStream):
            with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                try:
                    await stream.do_handshake()
                except trio.BrokenResourceError:
                    return
        tls = isinstance(stream, trio.SSLStream)
        pending = b""
        while True:
            head = await _read_head(stream, pending)
            if head is None:
                return
            req = head.request
            method = req.method.decode("ascii", "replace").upper()
            target = req.target.decode("latin-1")
            upgrade = _header(req, b"upgrade").lower()
            connection_tokens = {t.strip().lower() for t in _header(req, b"connection").split(",")}
            wants_tcp_upgrade = "upgrade" in connection_tokens and upgrade == "tcp"
            if self.app.is_hijack(method, target) or wants_tcp_upgrade and not self._has_http_route(method, target):
                await self._serve_hijack(stream, head, method, target, upgrade or "tcp",
                                         "upgrade" in connection_tokens and bool(upgrade))
                return
            if "upgrade" in connection_tokens and upgrade == "websocket":
                await self.bridge.serve_connection(stream, head.raw)
                return
            pending = await serve_request(self.app, stream, head.conn, req, tls=tls)
            if pending is None:
                return

    def _has_http_route(self, method: str, target: str) -> bool:
        try:
            self.app._resolve(method, target)
        except Exception:
            return False
        return True

    async def _serve_hijack(self, stream, head: _Head, method, target, protocol, upgrade_requested) -> None:
        conn = head.conn
        body = bytearray()
        client_eof = False
        with trio.fail_after(HEAD_TIMEOUT):
            while True:
                event = conn.next_event()
                if isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_HIJACK_BODY:
                        await stream.send_all(json_response({"message": "request body too large"}, 413).to_bytes())
                        return
                elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                    break
                elif event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    conn.receive_data(data)
                elif isinstance(event, h11.ConnectionClosed):
                    return
        trailing, closed = conn.trailing_data
        client_eof = closed
        hijacked = HijackedStream(
            stream, trailing, client_eof=client_eof, upgrade_requested=upgrade_requested,
            upgrade_protocol=protocol,
        )
        try:
            await self.app.serve_hijack(
                method=method, target=target, headers=list(head.request.headers), body=bytes(body),
                stream=hijacked,
            )
        finally:
            with trio.move_on_after(1, shield=True):
                await hijacked.aclose()


async def serve_api(app, hosts: Sequence[str], tls: ssl.SSLContext | None = None, *,
                    task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Listen on every host (`unix:///path`, `tcp://host:port`; TLS for tcp when `tls` is
    given) until cancelled. `task_status.started(addresses)` once listening; on cancellation
    stop accepting, cancel the handlers, unlink the unix sockets."""
    listeners: list = []
    unix_paths: list[str] = []
    addresses: list[str] = []
    try:
        for host in hosts:
            ls, addrs, path = await _open_listeners(host, tls)
            listeners += ls
            addresses += addrs
            if path:
                unix_paths.append(path)
        handler = ConnectionHandler(app, HypercornBridge(app, max_header_size=MAX_HEAD))
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            log.info("API listening on %s", ", ".join(addresses))
            task_status.started(addresses)
    finally:
        with trio.move_on_after(2, shield=True):
            for l in listeners:
                try:
                    await l.aclose()
                except Exception:
                    pass
        for path in unix_paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("could not remove %s: %s", path, e)
