"""The Docker Engine API (v1.41) server: listener + hijack, ASGI app, router, responses.

Route modules (`engine.api.system`, `.events`, `.containers`, `.images`, `.exec`) each define
`router = Router()`; `create_app(daemon)` collects them. `container_spec_from_docker` reads
container records written before the typed spec (the daemon hands it to ContainerManager)."""

from ._app import App, create_app
from ._container_json import legacy_record as container_spec_from_docker
from ._errors import error_response
from ._hijack import MULTIPLEXED, RAW_STREAM, STDERR, STDIN, STDOUT, HijackedStream
from ._request import Headers, QueryParams, Request
from ._responses import (
    DEFAULT_HEADERS,
    DeferredResponse,
    Response,
    StreamingResponse,
    empty,
    json_deferred,
    json_response,
    json_stream,
    text,
)
from ._router import Route, Router
from ._server import serve_api, server_tls_context
from ._websocket import WebSocket

__all__ = [
    "App",
    "DEFAULT_HEADERS",
    "DeferredResponse",
    "Headers",
    "HijackedStream",
    "MULTIPLEXED",
    "QueryParams",
    "RAW_STREAM",
    "Request",
    "Response",
    "Route",
    "Router",
    "STDERR",
    "STDIN",
    "STDOUT",
    "StreamingResponse",
    "WebSocket",
    "container_spec_from_docker",
    "create_app",
    "empty",
    "error_response",
    "json_deferred",
    "json_response",
    "json_stream",
    "serve_api",
    "server_tls_context",
    "text",
]
