"""The Request a handler receives (same class on the ASGI path and the hijack path)."""

from __future__ import annotations

import collections
import json as _json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import trio

from engine.errors import InvalidParameter
from engine.events import parse_filters

from ._errors import PayloadTooLarge
from ._filters import Check, checked
from ._gotypes import json_object

__all__ = ["Headers", "QueryParams", "Request"]

_FALSE = ("", "0", "no", "false", "none")
#: Bytes of a body `Request.stream` delivers between schedule points at most.
YIELD_EVERY = 64 * 1024


class Headers:
    """Case-insensitive, multi-valued request headers."""

    def __init__(self, raw: Iterable[tuple[bytes | str, bytes | str]] = ()):
        self._items: list[tuple[str, str]] = []
        for k, v in raw:
            k = k.decode("latin-1") if isinstance(k, bytes) else k
            v = v.decode("latin-1") if isinstance(v, bytes) else v
            self._items.append((k.lower(), v))

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self._items:
            if k == name:
                return v
        return default

    def getall(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def __getitem__(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class QueryParams:
    """Query string access with Docker's conventions."""

    def __init__(self, query_string: bytes | str = b""):
        if isinstance(query_string, bytes):
            query_string = query_string.decode("latin-1")
        self._items = parse_qsl(query_string, keep_blank_values=True)

    def get(self, name: str, default: str | None = None) -> str | None:
        for k, v in self._items:
            if k == name:
                return v
        return default

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name]

    def __contains__(self, name: object) -> bool:
        return any(k == name for k, _ in self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def bool(self, name: str, default: bool = False) -> bool:
        """dockerd's BoolValue: absent → default; "", 0, no, false, none → False; else True."""
        v = self.get(name)
        if v is None:
            return default
        return v.strip().lower() not in _FALSE

    def int(self, name: str, default: int | None = None) -> int | None:
        v = self.get(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise InvalidParameter(f"invalid value for {name}: {v!r} is not an integer") from None

    def json_param(self, name: str, default: Any = None) -> Any:
        v = self.get(name)
        if v is None or v == "":
            return default
        try:
            return _json.loads(v)
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON in {name}: {e}") from None

    def filters(self, accepted: Mapping[str, Check | None]) -> dict[str, list[str]]:
        """Docker's `filters` param → {key: [values]} (map and legacy list forms), refused unless
        every key is one of `accepted` and passes its check."""
        return checked(parse_filters(self.get("filters")), accepted)

    def __repr__(self) -> str:
        return f"QueryParams({self._items!r})"


Receive = Callable[[], Awaitable[dict]]


class Request:
    """What a handler gets. Built by the app; handlers never construct one."""

    max_body = 64 * 1024 * 1024  # body() / json() limit; stream() has none

    def __init__(
        self,
        *,
        method: str,
        path: str,
        query_string: bytes | str,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        receive: Receive,
        daemon: Any,
        api_version: str,
        params: Mapping[str, str] | None = None,
        raw_path: str | None = None,
        scope: Mapping | None = None,
    ):
        self.method = method
        self.path = path  # without the /v1.NN prefix
        self.raw_path = raw_path if raw_path is not None else path
        self._query_string = query_string
        self._raw_headers = headers
        self._query: QueryParams | None = None
        self._headers: Headers | None = None
        self.daemon = daemon
        self.api_version = api_version
        self.params: dict[str, str] = dict(params or {})
        self.scope = scope
        self._receive = receive
        self._pending: collections.deque[bytes] = collections.deque()
        self._more_body = True
        self._body_started = False
        self._body_done = trio.Event()
        self._disconnected = trio.Event()
        self._lock = trio.Lock()

    @property
    def query(self) -> QueryParams:
        """Parsed on first use (most handlers never read the query or the headers)."""
        if self._query is None:
            self._query = QueryParams(self._query_string)
        return self._query

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self._raw_headers)
        return self._headers

    # -- body

    async def _pull(self) -> None:
        msg = await self._receive()
        kind = msg.get("type")
        if kind == "http.request":
            chunk = msg.get("body", b"")
            if chunk:
                self._pending.append(chunk)
            if not msg.get("more_body", False):
                self._more_body = False
                self._body_done.set()
        elif kind == "http.disconnect":
            self._more_body = False
            self._body_done.set()
            self._disconnected.set()

    async def _acquire(self) -> None:
        """The lock of `_pull` (the body's reader and `wait_disconnected` may both pull),
        taken at once when free: `async with lock` adds two schedule points to every pull."""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, as it arrives (tar uploads)."""
        self._body_started = True
        unyielded = 0  # bytes delivered since the last schedule point
        while True:
            if self._pending:
                chunk = self._pending.popleft()
                unyielded += len(chunk)
                yield chunk
                continue
            if not self._more_body:
                if self._disconnected.is_set():
                    raise trio.BrokenResourceError("client disconnected before the body ended")
                return
            if unyielded >= YIELD_EVERY:
                # A body that arrives as fast as it is read (reads that succeed need no
                # wait): let other tasks run now and then.
                unyielded = 0
                await trio.lowlevel.checkpoint()
                continue
            await self._acquire()
            try:
                if not self._pending and self._more_body:
                    await self._pull()
            finally:
                self._lock.release()

    async def body(self, limit: int | None = None) -> bytes:
        limit = self.max_body if limit is None else limit
        chunks = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def json(self, default: Any = None) -> Any:
        """The JSON body; `default` for an empty body; 400 on invalid JSON."""
        data = await self.body()
        if not data.strip():
            return default
        try:
            return _json.loads(data)
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None

    async def json_object(self, go_type: str) -> dict:
        """The JSON body as an object ({} when empty); anything else is a 400, worded as
        dockerd's decoder words it for `go_type`."""
        return json_object(await self.json(default={}), go_type)

    # -- connection

    @property
    def disconnected(self) -> bool:
        return self._disconnected.is_set()

    async def wait_disconnected(self) -> None:
        """Return once the client has gone away. The body is left to its reader if one started;
        an unread body is discarded."""
        while not self._disconnected.is_set():
            if self._body_started and self._more_body:
                await self._body_done.wait()
                continue
            await self._acquire()
            try:
                if self._disconnected.is_set():
                    return
                await self._pull()
                if not self._body_started:
                    self._pending.clear()
            finally:
                self._lock.release()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path}>"
