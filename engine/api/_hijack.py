"""The hijacked connection handed to attach / exec-start handlers.

    @router.hijack("POST", "/containers/{id}/attach")
    async def attach(req: Request, stream: HijackedStream) -> None:
        ...                                   # raise EngineErrors here → normal JSON error
        await stream.upgrade(MULTIPLEXED)     # "HTTP/1.1 101 UPGRADED" (or 200 OK if the
                                              # client did not ask for an upgrade)
        await stream.send_frame(STDOUT, b"hi\\n")
        data = await stream.receive_some()    # b"" = client half-closed (NOT a disconnect)

Multiplexed frames: 8-byte header [stream, 0, 0, 0, size (big-endian u32)] then the payload;
stream 0 stdin, 1 stdout, 2 stderr (3 = systemerr). Raw streams (tty) carry bytes as they are.
All writers share one send lock, so frames from stdout and stderr pumps never interleave.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios

import trio

from ._responses import DEFAULT_HEADERS, Response

__all__ = ["HijackedStream", "MULTIPLEXED", "RAW_STREAM", "STDIN", "STDOUT", "STDERR"]

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3

_FRAME = struct.Struct(">BxxxL")


def frame(stream_id: int, data: bytes) -> bytes:
    """One frame of Docker's multiplexed stream: [stream, 0, 0, 0, size (u32 BE)] + data."""
    return _FRAME.pack(stream_id, len(data)) + data
#: How long the first stream bytes wait for the client to have read the 101 head.
HEAD_READ_WAIT = 1.0


def _unread_by_peer(fd: int) -> int:
    """Bytes we sent on a unix stream socket that the peer has not read yet (SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]


class HijackedStream:
    """The raw client connection after the request (private constructor: the server builds it)."""

    def __init__(self, stream: trio.abc.HalfCloseableStream | trio.abc.Stream, buffered: bytes = b"",
                 *, client_eof: bool = False, upgrade_requested: bool = True,
                 upgrade_protocol: str = "tcp"):
        self._stream = stream
        self._buffered = bytearray(buffered)
        self._client_eof = client_eof
        self.upgrade_requested = upgrade_requested
        self.upgrade_protocol = upgrade_protocol
        self._send_lock = trio.Lock()
        self._receive_guard = trio.Lock()
        self.upgraded = False
        self.responded = False
        self.closed = False
        self.content_type: str | None = None

    # -- before the upgrade

    async def upgrade(self, content_type: str = RAW_STREAM, headers: dict[str, str] | None = None) -> None:
        """Answer `101 UPGRADED` (or `200 OK` to a client that sent no Upgrade header)."""
        if self.upgraded or self.responded:
            raise RuntimeError("response already sent on this hijacked connection")
        if self.upgrade_requested:
            lines = [
                "HTTP/1.1 101 UPGRADED",
                f"Content-Type: {content_type}",
                "Connection: Upgrade",
                f"Upgrade: {self.upgrade_protocol}",
            ]
        else:
            lines = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}"]
        extra = dict(DEFAULT_HEADERS)
        extra.update(headers or {})
        lines += [f"{k}: {v}" for k, v in extra.items()]
        self.upgraded = True
        self.content_type = content_type
        async with self._send_lock:
            await self._stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if self.upgrade_requested:
                await self._wait_head_read()

    async def _wait_head_read(self) -> None:
        """docker-py reads the 101 head through http.client's buffered reader, then the stream
        from the raw socket: stream bytes that arrive together with the head end up in that
        buffer and are lost to it (`attach(stream=False, logs=True)` of a stopped container
        came back empty). So the stream starts once the client has read the head — on a unix
        socket the kernel tells how much of what we sent is unread; bounded, since a client
        that never reads must still get its stream."""
        sock = getattr(self._stream, "socket", None)
        if sock is None or sock.family != socket.AF_UNIX:
            return
        with trio.move_on_after(HEAD_READ_WAIT):
            while _unread_by_peer(sock.fileno()) > 0:
                await trio.sleep(0.0005)

    async def respond(self, response: Response) -> None:
        """A normal (non-upgraded) response, then the connection ends (errors, detached exec)."""
        if self.upgraded or self.responded:
            raise RuntimeError("response already sent on this hijacked connection")
        self.responded = True
        async with self._send_lock:
            await self._stream.send_all(response.to_bytes())

    # -- after the upgrade

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        """Client bytes (buffered ones first). b"" once the client half-closed or went away."""
        async with self._receive_guard:
            if self._buffered:
                data = bytes(self._buffered[:max_bytes])
                del self._buffered[:max_bytes]
                return data
            if self._client_eof or self.closed:
                return b""
            try:
                data = await self._stream.receive_some(max_bytes)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._client_eof = True
            return data

    async def chunks(self):
        """The client's bytes until it half-closes (stdin for attach and exec)."""
        while True:
            data = await self.receive_some()
            if not data:
                return
            yield data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Raises trio.BrokenResourceError / ClosedResourceError once the client is gone."""
        if not self.upgraded:
            raise RuntimeError("call upgrade() before sending stream data")
        if not data:
            return
        async with self._send_lock:
            await self._stream.send_all(data)

    async def send_frame(self, stream_id: int, data: bytes | bytearray | memoryview) -> None:
        """One multiplexed frame (STDOUT=1, STDERR=2) — header and payload under one lock."""
        if not data:
            return
        await self.send_all(frame(stream_id, bytes(data)))

    async def send_eof(self) -> bool:
        """Half-close our side (if the transport can); the client sees the stream end.
        False when it could not (TLS has no half-close, or the connection is gone)."""
        async with self._send_lock:
            send_eof = getattr(self._stream, "send_eof", None)
            if send_eof is None:
                return False
            try:
                await send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return False
            return True

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if isinstance(self._stream, trio.SSLStream):
            # TLS has no half-close: the client's close_notify is likely sitting unread, and
            # closing a socket with unread input sends a reset the docker CLI reports as an
            # error. Read what is pending first (briefly).
            with trio.move_on_after(0.2):
                try:
                    while await self._stream.receive_some(65536):
                        pass
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                    pass
        await self._stream.aclose()
