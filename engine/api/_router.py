"""Route registration (one Router per resource module, podman style) and resolution.

    router = Router()

    @router.get("/containers/{id}/json")
    async def inspect(req: Request) -> Response: ...

    @router.get("/images/{name:path}/json")          # name may contain slashes
    @router.hijack("POST", "/containers/{id}/attach") # handler(req, HijackedStream)
    @router.websocket("/events/ws")                  # handler(req, WebSocket)

Every route is served with and without a `/v1.NN` prefix (1.12 ≤ NN ≤ 1.41).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs

from engine import API_VERSION, MIN_API_VERSION
from engine.errors import InvalidParameter

from ._errors import MethodNotAllowed, page_not_found

__all__ = ["Route", "Router", "split_version"]

_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?\}")
_VERSION_RE = re.compile(r"^/v([0-9][0-9.]*)(/.*)$")

HTTP = "http"
HIJACK = "hijack"
WEBSOCKET = "websocket"


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p != "")


def split_version(path: str) -> tuple[str, str]:
    """"/v1.41/containers/json" → ("1.41", "/containers/json"); no prefix → default version.
    400 (like dockerd) for versions outside [MIN_API_VERSION, API_VERSION]."""
    m = _VERSION_RE.match(path)
    if not m:
        return API_VERSION, path
    version, rest = m.group(1), m.group(2)
    try:
        vt = _vtuple(version)
    except ValueError:
        raise InvalidParameter(f"invalid API version {version!r}") from None
    if not vt:
        raise InvalidParameter(f"invalid API version {version!r}")
    if vt > _vtuple(API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if vt < _vtuple(MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    return version, rest


@attrs.frozen
class Route:
    method: str
    template: str
    handler: Callable[..., Any]
    kind: str = HTTP
    regex: re.Pattern | None = None  # None for literal templates

    def match(self, path: str) -> dict[str, str] | None:
        if self.regex is None:
            return {} if path == self.template else None
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


def _compile(template: str) -> re.Pattern | None:
    if not _PARAM_RE.search(template):
        return None
    out, pos = [], 0
    for m in _PARAM_RE.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


def _first_segment(template: str) -> str | None:
    """The literal first path segment of a template ("/containers/{id}/json" → "containers"),
    None when it holds a parameter."""
    first = template[1:].split("/", 1)[0]
    return None if "{" in first else first


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._index: dict | None = None  # built on first resolve: every request resolves

    def add(self, method: str, path: str, handler: Callable[..., Any], kind: str = HTTP) -> Route:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        route = Route(method.upper(), path, handler, kind, _compile(path))
        self.routes.append(route)
        self._index = None
        return route

    def _candidates(self, path: str, websocket: bool) -> list[Route]:
        """The routes that may match `path`, literal templates first, each group in
        registration order (what a scan of every route would find, without the scan)."""
        if self._index is None:
            literal: dict = {}
            by_segment: dict = {}
            for r in self.routes:
                ws = r.kind == WEBSOCKET
                if r.regex is None:
                    literal.setdefault((ws, r.template), []).append(r)
                else:
                    by_segment.setdefault((ws, _first_segment(r.template)), []).append(r)
            self._index = {"literal": literal, "segment": by_segment, "order": {id(r): i for i, r in enumerate(self.routes)}}
        index = self._index
        first = path[1:].split("/", 1)[0]
        patterns = index["segment"].get((websocket, first), []) + index["segment"].get((websocket, None), [])
        if len(patterns) > 1 and (websocket, None) in index["segment"]:
            patterns.sort(key=lambda r: index["order"][id(r)])
        return index["literal"].get((websocket, path), []) + patterns

    def route(self, method: str, path: str, kind: str = HTTP):
        def deco(fn):
            self.add(method, path, fn, kind)
            return fn

        return deco

    def get(self, path: str):
        return self.route("GET", path)

    def post(self, path: str):
        return self.route("POST", path)

    def put(self, path: str):
        return self.route("PUT", path)

    def delete(self, path: str):
        return self.route("DELETE", path)

    def head(self, path: str):
        return self.route("HEAD", path)

    def hijack(self, method: str, path: str):
        """`async def handler(req, stream: HijackedStream) -> None` — the raw connection."""
        return self.route(method, path, HIJACK)

    def websocket(self, path: str):
        """`async def handler(req, ws: WebSocket) -> None` — a GET upgraded to a websocket."""
        return self.route("GET", path, WEBSOCKET)

    def include(self, other: Router) -> None:
        self.routes.extend(other.routes)
        self._index = None

    def resolve(self, method: str, path: str, *, websocket: bool = False) -> tuple[Route, dict[str, str]]:
        """The route for (method, path without version prefix). Literal templates win over
        templates with params; HEAD falls back to GET. 404 / 405 as EngineErrors."""
        method = method.upper()
        matched: list[tuple[Route, dict[str, str]]] = []
        for r in self._candidates(path, websocket):
            params = r.match(path)
            if params is not None:
                matched.append((r, params))
        if not matched:
            raise page_not_found()
        for r, params in matched:
            if r.method == method:
                return r, params
        if method == "HEAD":
            for r, params in matched:
                if r.method == "GET" and r.kind == HTTP:
                    return r, params
        raise MethodNotAllowed(f"method {method} not allowed for {path}")
