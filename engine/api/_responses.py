"""Responses a handler returns. They know how to send themselves over ASGI (the hypercorn
path) and how to serialize to raw HTTP/1.1 bytes (the hijack path, before the upgrade)."""

from __future__ import annotations

import contextlib
import json as _json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import trio

from engine import API_VERSION

__all__ = [
    "DEFAULT_HEADERS",
    "DeferredResponse",
    "Response",
    "StreamingResponse",
    "empty",
    "json_deferred",
    "json_response",
    "json_stream",
    "text",
]

log = logging.getLogger("engine.api")

# dockerd's compatibility level: API 1.41 is Docker 20.10.
DOCKER_COMPAT_VERSION = "20.10.0"
SERVER_HEADER = f"Docker/{DOCKER_COMPAT_VERSION} (linux)"

# Sent on every response, like dockerd's middleware (clients read Api-Version from /_ping).
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Api-Version", API_VERSION),
    ("Docker-Experimental", "false"),
    ("Ostype", "linux"),
    ("Server", SERVER_HEADER),
)

_DEFAULT_HEADERS = tuple((k.lower(), k.encode("latin-1"), v.encode("latin-1")) for k, v in DEFAULT_HEADERS)

_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content", 301: "Moved Permanently",
    304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}


def _no_body(status: int) -> bool:
    return status in (204, 304) or 100 <= status < 200


class Response:
    """A complete response: status, headers, body bytes."""

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ):
        self.status = status
        self.body = b"" if _no_body(status) else body
        self.headers: list[tuple[str, str]] = list(
            headers.items() if isinstance(headers, Mapping) else (headers or ())
        )
        if content_type and not _no_body(status):
            self.headers.append(("Content-Type", content_type))

    def _header_names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}

    def header_list(self, *, streaming: bool = False) -> list[tuple[bytes, bytes]]:
        names = self._header_names()
        out = [(k, v) for lower, k, v in _DEFAULT_HEADERS if lower not in names]
        out += [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in self.headers]
        if not streaming and not _no_body(self.status) and "content-length" not in names:
            out.append((b"content-length", str(len(self.body)).encode()))
        return out

    async def send_asgi(self, send, request) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.header_list()})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})

    def to_bytes(self) -> bytes:
        """Raw HTTP/1.1 bytes, ending the connection (hijack path errors)."""
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}".encode()]
        for k, v in self.header_list():
            lines.append(k + b": " + v)
        lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status}>"


class StreamingResponse(Response):
    """Headers go out at once (the docker CLI blocks on `wait` until they arrive), then each
    chunk of `content` as it comes. When the client disconnects, the iteration is cancelled
    and the iterator closed (an async generator's `finally` runs)."""

    def __init__(
        self,
        content: AsyncIterable[bytes],
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        on_close: Callable[[], None] | None = None,
    ):
        super().__init__(b"", status, headers, content_type)
        self.content = content
        self.on_close = on_close  # sync; runs once the response is over, however it ends

    async def send_asgi(self, send, request) -> None:
        iterator = aiter(self.content)
        try:
            await send(
                {"type": "http.response.start", "status": self.status,
                 "headers": self.header_list(streaming=True)}
            )
            async with _until_disconnected(request, "streaming response") as watched:
                async for chunk in iterator:
                    if chunk:
                        await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            if not watched.client_gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with trio.move_on_after(5, shield=True):
                    try:
                        await aclose()
                    except Exception:
                        log.exception("closing the stream iterator failed")
            if self.on_close is not None:
                try:
                    self.on_close()
                except Exception:
                    log.exception("on_close of a streaming response failed")


class _Watch:
    client_gone = False


@contextlib.asynccontextmanager
async def _until_disconnected(request, what: str):
    """The body of a response whose head is gone: cancelled when the client goes away (then
    `client_gone`), and a failure only logged (nothing else can be said to the client; the
    caller ends the body)."""
    watched = _Watch()
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            await request.wait_disconnected()
            watched.client_gone = True
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        try:
            yield watched
        except Exception:
            log.exception("%s for %s %s failed", what, request.method, request.path)
        nursery.cancel_scope.cancel()


class DeferredResponse(Response):
    """A long poll: the head goes out at once (the docker CLI blocks on `wait` until it
    arrives), the one body once `produce()` returns it, in the same write as the end of the
    response (a StreamingResponse of one chunk writes the chunk and the end separately).
    `produce` is cancelled when the client goes away.

    Most long polls end soon (a burst's `docker wait` after `start`). A `restartable`
    produce first runs alone for QUICK seconds; only one that takes longer is cancelled and
    called again with a task watching the client (a nursery, a task and its cancellation
    cost more than such a poll). Restartable: a second call after a cancellation answers
    what the first would have; a client that goes away is then noticed up to QUICK seconds
    late."""

    QUICK = 0.1

    def __init__(self, produce: Callable[[], Any], content_type: str = "application/octet-stream",
                 status: int = 200, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                 *, restartable: bool = False):
        super().__init__(b"", status, headers, content_type)
        self.produce = produce  # async () -> bytes
        self.restartable = restartable

    async def send_asgi(self, send, request) -> None:
        await send({"type": "http.response.start", "status": self.status,
                    "headers": self.header_list(streaming=True)})
        body = None
        if self.restartable:
            with trio.move_on_after(self.QUICK):
                try:
                    body = await self.produce()
                except Exception:
                    log.exception("deferred response for %s %s failed", request.method, request.path)
                    body = b""
        if body is None:
            body = b""
            async with _until_disconnected(request, "deferred response"):
                body = await self.produce()
        await send({"type": "http.response.body", "body": body, "more_body": False})


def json_deferred(produce: Callable[[], Any], status: int = 200,
                  headers: Mapping[str, str] | None = None, *, restartable: bool = False) -> DeferredResponse:
    """One JSON document (a line) once `await produce()` returns it: docker wait."""

    async def body() -> bytes:
        return _json.dumps(await produce()).encode() + b"\n"

    return DeferredResponse(body, "application/json", status, headers, restartable=restartable)


def json_response(
    obj: Any, status: int = 200, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
) -> Response:
    return Response(_json.dumps(obj).encode() + b"\n", status, headers, "application/json")


def empty(status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
    return Response(b"", status, headers)


def text(
    body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8",
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(body.encode(), status, headers, content_type)


async def _ndjson(items: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    iterator = aiter(items)
    try:
        async for item in iterator:
            yield _json.dumps(item).encode() + b"\n"
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with trio.CancelScope(shield=True):
                await aclose()


def json_stream(
    items: AsyncIterable[Any], status: int = 200, headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> StreamingResponse:
    """Newline-delimited JSON, one object per item (docker's progress and event streams)."""
    return StreamingResponse(_ndjson(items), content_type, status, headers)
