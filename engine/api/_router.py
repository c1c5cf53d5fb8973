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

from ._errors import page_not_found

__all__ = ["Route", "Router", "split_version"]

_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(path))?\}")
_VERSION_RE = re.compile(r"^/v([0-9][0-9.]*)(/.*)$")

HTTP = "http"
HIJACK = "hijack"
WEBSOCKET = "websocket"


def _vtuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p != "")


_MAX_VERSION = _vtuple(API_VERSION)
_MIN_VERSION = _vtuple(MIN_API_VERSION)


def split_version(path: str) -> tuple[str, str]:
    """"/v1.41/containers/json" → ("1.41", "/containers/json"); no prefix → default version.
    400 (like dockerd) for versions outside [MIN_API_VERSION, API_VERSION]."""
    if not path.startswith("/v"):
        return API_VERSION, path
    m = _VERSION_RE.match(path)
    if not m:
        return API_VERSION, path
    version, rest = m.group(1), m.group(2)
    if version == API_VERSION:  # what docker-py and the CLI send
        return version, rest
    try:
        vt = _vtuple(version)
    except ValueError:
        raise InvalidParameter(f"invalid API version {version!r}") from None
    if not vt:
        raise InvalidParameter(f"invalid API version {version!r}")
    if vt > _MAX_VERSION:
        raise InvalidParameter(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if vt < _MIN_VERSION:
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
        self._index: _Index | None = None  # built on first resolve: every request resolves

    def add(self, method: str, path: str, handler: Callable[..., Any], kind: str = HTTP) -> Route:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        route = Route(method.upper(), path, handler, kind, _compile(path))
        self.routes.append(route)
        self._index = None
        return route

    def _build_index(self) -> _Index:
        """Where to look for a path: its literal templates, then the templates with params
        that may match it (by literal first segment, plus those whose first segment is a
        param), each group in registration order; both split by method too."""
        literal: dict = {}
        by_segment: dict = {}
        for r in self.routes:
            ws = r.kind == WEBSOCKET
            if r.regex is None:
                literal.setdefault((ws, r.template), []).append(r)
            else:
                by_segment.setdefault((ws, _first_segment(r.template)), []).append(r)
        order = {id(r): i for i, r in enumerate(self.routes)}
        any_segment = {ws: by_segment.get((ws, None), []) for ws in (False, True)}
        segments = {}
        for (ws, first), routes in by_segment.items():
            if first is not None:
                segments[(ws, first)] = sorted(routes + any_segment[ws], key=lambda r: order[id(r)])
        index = _Index(literal, segments, any_segment, {}, {})
        for key, routes in literal.items():
            index.literal_by_method[key] = _by_method(routes)
        for key, routes in segments.items():
            index.by_method[key] = _by_method(routes)
        for ws, routes in any_segment.items():
            index.by_method[(ws, None)] = _by_method(routes)
        self._index = index
        return index

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
        templates with params; HEAD falls back to GET. NotFound ("page not found") when none
        matches, also when only another method's route does: dockerd's answer (its router
        has no 405)."""
        method = method.upper()
        index = self._index or self._build_index()
        # The first route of the method that matches, in the order below (the common case:
        # only the method's routes are tried).
        routes = index.literal_by_method.get((websocket, path))
        if routes is not None and method in routes:
            return routes[method][0], {}
        first = path[1:].split("/", 1)[0]
        key = (websocket, first) if (websocket, first) in index.segments else (websocket, None)
        for r in index.by_method[key].get(method, ()):
            m = r.regex.fullmatch(path)
            if m is not None:
                return r, m.groupdict()
        if method == "HEAD":  # none of its own: GET's
            candidates = index.literal.get((websocket, path), []) + index.segments.get(key, index.any_segment[websocket])
            for r in candidates:
                if r.method == "GET" and r.kind == HTTP and (params := r.match(path)) is not None:
                    return r, params
        raise page_not_found()


@attrs.define
class _Index:
    literal: dict  # (websocket, template) → [Route]
    segments: dict  # (websocket, first segment) → [Route with params]: its own and any_segment's
    any_segment: dict  # websocket → [Route with params whose first segment is a param]
    literal_by_method: dict  # (websocket, template) → {method: [Route]}
    by_method: dict  # (websocket, first segment or None) → {method: [Route with params]}


def _by_method(routes: list[Route]) -> dict[str, list[Route]]:
    out: dict[str, list[Route]] = {}
    for r in routes:
        out.setdefault(r.method, []).append(r)
    return out
