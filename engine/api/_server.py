"""The API listener(s).

    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(serve_api, app, ["unix:///run/pyengine.sock"])

Per connection one h11.Connection reads each request head (engine/api/_http1.py; size and
time limits), then:

    hijack route (attach, exec start) ──► read the body, keep any extra bytes the client sent,
                                           app.serve_hijack(…, HijackedStream); the connection
                                           is the handler's from then on
    websocket upgrade                  ──► hypercorn serves the connection (it replays the head,
                                           written again by h11, and the bytes after it)
    anything else                      ──► _http1.serve_request drives the ASGI app over the
                                           same h11 connection; then the next request (keep-alive)

Unix sockets are accepted by our own loop and served from the bare socket (no trio
SocketStream per connection: a burst of containers opens three connections per container);
TCP (and TLS) listeners go through trio.serve_listeners.

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

from engine.errors import EngineError

from ._hijack import HijackedStream
from ._http1 import (
    HEAD_TIMEOUT, MAX_HEAD, RECEIVE_SIZE, HeadTimer, HeadTimers, HTTPConnection, SocketConn, StreamConn, request_head,
    serve_request, upgrade_of,
)
from ._hypercorn_bridge import HypercornBridge
from ._responses import json_response
from ._router import HIJACK

__all__ = ["serve_api", "server_tls_context"]

log = logging.getLogger("engine.api")

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


async def _open_unix_listener(path: str, gid: int | None = None) -> _socket.socket:
    """A listening, non-blocking unix socket (served by `_accept_loop`), mode 0660 and of
    group `gid` when given (--group: its members may use the API without root)."""
    def prepare() -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        _remove_stale_socket(path)

    await trio.to_thread.run_sync(prepare)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        os.chmod(path, UNIX_SOCKET_MODE)
        if gid is not None:
            os.chown(path, -1, gid)
        sock.listen(_socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _open_listeners(host: str, tls: ssl.SSLContext | None, socket_gid: int | None = None):
    """→ (listeners, addresses, unix_path or None); a unix listener is a plain socket, the
    others trio listeners."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        listener = await _open_unix_listener(path, socket_gid)
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


class ConnectionHandler:
    def __init__(self, app, bridge: HypercornBridge):
        self.app = app
        self.bridge = bridge
        self.timers = HeadTimers()  # its `run` goes with the listeners

    async def serve_socket(self, sock: _socket.socket) -> None:
        """A plain connection accepted by `_accept_loop`."""
        await self._run(SocketConn(sock), tls=False)

    async def __call__(self, stream) -> None:
        """A connection from a trio listener (TCP, TLS)."""
        await self._run(StreamConn(stream), tls=isinstance(stream, trio.SSLStream))

    async def _run(self, conn, *, tls: bool) -> None:
        connection = HTTPConnection(conn)
        try:
            if tls:
                with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                    try:
                        await conn.stream.do_handshake()
                    except trio.BrokenResourceError:
                        return
            await self._serve(connection, tls)
        except trio.TooSlowError:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        except h11.RemoteProtocolError as e:
            await self._send_error(connection, e.error_status_hint, f"bad request: {e}")
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
            try:
                await conn.aclose()
            except Exception:
                pass

    @staticmethod
    async def _send_error(connection: HTTPConnection, status: int, message: str) -> None:
        response = json_response({"message": message}, status)
        await connection.send_error(status, response.header_list(), response.body)

    async def _serve(self, connection: HTTPConnection, tls: bool) -> None:
        timer = HeadTimer(self.timers, connection.conn)
        if timer.scope is None:
            await self._serve_requests(connection, timer, tls)
            return
        with timer.scope:
            await self._serve_requests(connection, timer, tls)
        # the head's time limit passed: close

    async def _serve_requests(self, connection: HTTPConnection, timer: HeadTimer, tls: bool) -> None:
        while True:
            request = await connection.next_request(timer)
            if request is None:
                return
            method = request.method.decode("ascii").upper()
            target = request.target.decode("latin-1")
            try:
                route = self.app.resolve(method, target)
            except EngineError as exc:
                route = exc
            upgrade, connection_upgrade = upgrade_of(request)
            if not isinstance(route, Exception) and route[2].kind == HIJACK \
                    or connection_upgrade and upgrade == "tcp" and isinstance(route, Exception):
                await self._serve_hijack(connection, request, method, target, upgrade or "tcp",
                                         connection_upgrade and bool(upgrade))
                return
            if connection_upgrade and upgrade == "websocket" and request.http_version == b"1.1":
                await self.bridge.serve_connection(connection.conn.trio_stream(),
                                                   request_head(request) + connection.received())
                return
            if not await serve_request(self.app, connection, request, method, target, tls=tls, route=route):
                return

    async def _serve_hijack(self, connection: HTTPConnection, request, method: str, target: str, protocol: str,
                            upgrade_requested: bool) -> None:
        h = connection.h11
        body = bytearray()
        with trio.fail_after(HEAD_TIMEOUT):
            while True:
                event = h.next_event()
                if type(event) is h11.Data:
                    body += event.data
                    if len(body) > MAX_HIJACK_BODY:
                        await self._send_error(connection, 413, "request body too large")
                        return
                elif type(event) is h11.EndOfMessage or event is h11.PAUSED:
                    break  # PAUSED: after the body of a request asking for an upgrade
                elif event is h11.NEED_DATA:
                    data = await connection.conn.receive_some(RECEIVE_SIZE)
                    if not data:
                        return  # gone before its body ended
                    h.receive_data(data)
                else:
                    return
        hijacked = HijackedStream(
            connection.conn.trio_stream(), connection.received(), client_eof=False,
            upgrade_requested=upgrade_requested, upgrade_protocol=protocol,
        )
        try:
            await self.app.serve_hijack(
                method=method, target=target, headers=list(request.headers), body=bytes(body), stream=hijacked,
            )
        finally:
            with trio.move_on_after(1, shield=True):
                await hijacked.aclose()


async def _accept_loop(sock: _socket.socket, handler: ConnectionHandler) -> None:
    """Accept on a plain listening socket until cancelled, one task per connection. (trio's
    serve_listeners wraps each connection in a SocketStream; plain connections are served
    from the bare socket: engine/api/_http1.py.)"""
    async with trio.open_nursery() as connections:
        in_a_row = 0
        while True:
            try:
                client, _ = sock.accept()
            except BlockingIOError:
                in_a_row = 0
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError as exc:
                if exc.errno in _ACCEPT_RESOURCE_ERRORS:
                    log.error("accepting an API connection failed (%s); retrying in 100 ms", exc)
                    await trio.sleep(0.1)
                    continue
                if exc.errno in _ACCEPT_TRANSIENT_ERRORS:
                    continue
                raise
            connections.start_soon(handler.serve_socket, client, name="engine.api connection")
            in_a_row += 1
            if in_a_row >= 16:  # a flood of connections must not starve the rest
                in_a_row = 0
                await trio.lowlevel.checkpoint()


_ACCEPT_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_TRANSIENT_ERRORS = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR}


async def serve_api(app, hosts: Sequence[str], tls: ssl.SSLContext | None = None, *,
                    socket_gid: int | None = None, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Listen on every host (`unix:///path` (of group `socket_gid`), `tcp://host:port`; TLS
    for tcp when `tls` is given) until cancelled. `task_status.started(addresses)` once
    listening; on cancellation stop accepting, cancel the handlers, unlink the unix sockets."""
    listeners: list = []
    unix_paths: list[str] = []
    addresses: list[str] = []
    try:
        for host in hosts:
            ls, addrs, path = await _open_listeners(host, tls, socket_gid)
            listeners += ls
            addresses += addrs
            if path:
                unix_paths.append(path)
        handler = ConnectionHandler(app, HypercornBridge(app, max_header_size=MAX_HEAD))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handler.timers.run)
            for l in listeners:
                if isinstance(l, _socket.socket):
                    nursery.start_soon(_accept_loop, l, handler)
            trio_listeners = [l for l in listeners if not isinstance(l, _socket.socket)]
            if trio_listeners:
                await nursery.start(trio.serve_listeners, handler, trio_listeners)
            log.info("API listening on %s", ", ".join(addresses))
            task_status.started(addresses)
    finally:
        with trio.move_on_after(2, shield=True):
            for l in listeners:
                try:
                    if isinstance(l, _socket.socket):
                        trio.lowlevel.notify_closing(l)
                        l.close()
                    else:
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
