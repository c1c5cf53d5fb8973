"""The ASGI application: route resolution, the version prefix, error mapping, and the
hijack entry point the server calls for attach / exec start."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import trio

from engine.errors import EngineError, InvalidParameter

from ._errors import error_response
from ._hijack import HijackedStream
from ._request import Request
from ._responses import Response, json_response
from ._router import HIJACK, HTTP, Router, split_version
from ._websocket import WebSocket

__all__ = ["App", "create_app"]

log = logging.getLogger("engine.api")

# Always present, then the ones that may not exist yet (each exposes `router`).
CORE_ROUTE_MODULES = ("engine.api.system", "engine.api.events")
OPTIONAL_ROUTE_MODULES = ("engine.api.containers", "engine.api.registry", "engine.api.images", "engine.api.exec",
                          "engine.api.networks", "engine.api.volumes", "engine.api.swarm", "engine.api.plugins",
                          "engine.api.build")


class App:
    """ASGI 3 app. `app.router` holds every route; `app.daemon` is handed to each Request."""

    def __init__(self, daemon: Any, routers: Iterable[Router] = ()):
        self.daemon = daemon
        self.router = Router()
        for r in routers:
            self.router.include(r)

    # ---------------------------------------------------------------- dispatch helpers

    def _resolve(self, method: str, raw_target: str, *, websocket: bool = False):
        path = raw_target.split("?", 1)[0]
        version, rest = split_version(path)
        route, params = self.router.resolve(method, rest, websocket=websocket)
        for k, v in params.items():
            if "%" in v:
                params[k] = unquote(v)
        return version, rest, route, params

    def resolve(self, method: str, raw_target: str):
        """(version, path without it, Route, params) for a request; EngineError (404, 405,
        400 for a bad version) when there is none. The server resolves each request once
        and hands the result to `_http` in the scope ("pyengine.route")."""
        return self._resolve(method, raw_target)

    def is_hijack(self, method: str, target: str) -> bool:
        """Does this request go to a hijack route?"""
        try:
            _, _, route, _ = self._resolve(method, target)
        except EngineError:
            return False
        return route.kind == HIJACK

    # ---------------------------------------------------------------- ASGI

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope, receive, send) -> None:
        method = scope["method"]
        path = _raw_path(scope)
        where = f"{method} {path}"
        started = False

        async def tracking_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        request = None
        try:
            resolved = scope.get("pyengine.route")
            if resolved is None:
                resolved = self._resolve(method, path)
            elif isinstance(resolved, Exception):
                raise resolved
            version, rest, route, params = resolved
            if route.kind != HTTP:
                raise InvalidParameter("this endpoint needs a connection upgrade (Upgrade: tcp)")
            request = Request(
                method=method, path=unquote(rest), raw_path=path, query_string=scope.get("query_string", b""),
                headers=scope.get("headers", ()), receive=receive, daemon=self.daemon,
                api_version=version, params=params, scope=scope,
            )
            response = await route.handler(request)
            if response is None:
                response = Response(b"", 204)
            elif not isinstance(response, Response):
                response = json_response(response)
        except Exception as exc:  # the ONE error mapping
            response = error_response(exc, where)
        if request is None:
            request = Request(
                method=method, path=path, query_string=b"", headers=(), receive=receive,
                daemon=self.daemon, api_version="", scope=scope,
            )
        try:
            await response.send_asgi(tracking_send, request)
        except Exception as exc:
            if started:
                log.exception("sending the response to %s failed", where)
                return
            await error_response(exc, where).send_asgi(send, request)

    async def _websocket(self, scope, receive, send) -> None:
        path = _raw_path(scope)
        where = f"websocket {path}"
        try:
            version, rest, route, params = self._resolve("GET", path, websocket=True)
            request = Request(
                method="GET", path=unquote(rest), raw_path=path, query_string=scope.get("query_string", b""),
                headers=scope.get("headers", ()), receive=receive, daemon=self.daemon,
                api_version=version, params=params, scope=scope,
            )
            ws = WebSocket(receive, send)
        except Exception as exc:
            await self._websocket_refuse(scope, send, error_response(exc, where))
            return
        try:
            await route.handler(request, ws)
        except Exception as exc:
            if not ws.accepted:
                await self._websocket_refuse(scope, send, error_response(exc, where))
                return
            log.exception("websocket handler %s failed", where)
            with trio.move_on_after(1):
                try:
                    await ws.close(1011, str(exc)[:120])
                except Exception:
                    pass
            return
        if not ws.closed:
            with trio.move_on_after(1):
                try:
                    await ws.close()
                except Exception:
                    pass

    @staticmethod
    async def _websocket_refuse(scope, send, response: Response) -> None:
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": response.status,
                        "headers": response.header_list()})
            await send({"type": "websocket.http.response.body", "body": response.body})
        else:
            await send({"type": "websocket.close", "code": 1008})

    # ---------------------------------------------------------------- hijack

    async def serve_hijack(self, *, method: str, target: str, headers, body: bytes,
                           stream: HijackedStream) -> None:
        """Run the hijack handler for an already-read request. Errors before the upgrade
        become normal JSON responses; after it they are logged and the connection closed."""
        path, _, query = target.partition("?")
        where = f"{method} {path} (hijacked)"
        body_sent = False

        async def receive():
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await trio.sleep_forever()

        try:
            version, rest, route, params = self._resolve(method, path)
            request = Request(
                method=method, path=unquote(rest), raw_path=path, query_string=query, headers=headers,
                receive=receive, daemon=self.daemon, api_version=version, params=params,
            )
            if route.kind != HIJACK:
                raise InvalidParameter(f"{method} {rest} does not support a connection upgrade")
            await route.handler(request, stream)
        except Exception as exc:
            if not stream.upgraded and not stream.responded:
                try:
                    await stream.respond(error_response(exc, where))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            else:
                log.exception("hijacked handler %s failed after the upgrade", where)


def _raw_path(scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return scope["path"]


def _load_routers() -> list[Router]:
    routers = []
    for name in CORE_ROUTE_MODULES:
        routers.append(importlib.import_module(name).router)
    for name in OPTIONAL_ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # not written yet: fine
                continue
            raise ImportError(f"route module {name} is present but failed to import: {e}") from e
        except Exception as e:
            raise ImportError(f"route module {name} is present but failed to import: {e!r}") from e
        router = getattr(module, "router", None)
        if not isinstance(router, Router):
            raise ImportError(f"route module {name} has no `router = Router()`")
        routers.append(router)
    return routers


def create_app(daemon: Any, extra_routers: Iterable[Router] = ()) -> App:
    """The engine's ASGI app: system + events routes, the container/image/exec routes when
    their modules exist, and any `extra_routers` (tests, plugins)."""
    return App(daemon, [*_load_routers(), *extra_routers])
