"""`events`: print the daemon's event stream in docker's line format.

Following (no --until, or --follow) reads the websocket endpoint GET /events/ws with
trio-websocket over the unix socket; a bounded query (--until) uses the streaming GET /events.
If the daemon has no websocket endpoint the streaming endpoint is used for both.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any, Callable

from ._app import Cli, CommandError, arg, command
from ._client import PREFIX, ConnectError, parse_host
from ._format import (TemplateError, filters_param, iter_json_stream, parse_timestamp, render,
                      rfc3339_nano)


def format_event(ev: dict[str, Any]) -> str:
    """docker's prettyPrintEvent: time type action id (k=v, …) with attributes sorted."""
    parts = []
    if ev.get("timeNano"):
        parts.append(rfc3339_nano(int(ev["timeNano"])) + " ")
    elif ev.get("time"):
        parts.append(rfc3339_nano(int(ev["time"]) * 1_000_000_000) + " ")
    actor = ev.get("Actor") or {}
    parts.append(f"{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}")
    attrs = actor.get("Attributes") or {}
    if attrs:
        parts.append(" (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")")
    return "".join(parts)


class _NoWebsocket(Exception):
    pass


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def follow_ws(host: str, query: str, on_event: Callable[[dict], None]) -> None:
    """Print events from the websocket endpoint until the daemon closes it."""
    import trio_websocket  # here, not at the top: every CLI command imports this module

    try:
        await _follow_ws(host, query, on_event)
    except BaseExceptionGroup as group:
        exc = _unwrap(group)
        if isinstance(exc, (trio_websocket.ConnectionRejected, trio_websocket.HandshakeError)):
            raise _NoWebsocket(str(exc)) from None
        raise exc from None
    except (trio_websocket.ConnectionRejected, trio_websocket.HandshakeError) as exc:
        raise _NoWebsocket(str(exc)) from None


async def _follow_ws(host: str, query: str, on_event: Callable[[dict], None]) -> None:
    import trio
    import trio_websocket

    scheme, address = parse_host(host)
    resource = f"{PREFIX}/events/ws" + (f"?{query}" if query else "")
    try:
        if scheme == "unix":
            stream = await trio.open_unix_socket(address)
        else:
            h, _, p = address.rpartition(":")
            stream = await trio.open_tcp_stream(h.strip("[]"), int(p))
    except OSError:
        raise ConnectError(host) from None
    async with trio.open_nursery() as nursery:
        try:
            ws = await trio_websocket.wrap_client_stream(nursery, stream, "docker", resource)
        except trio_websocket.ConnectionRejected as exc:
            raise _NoWebsocket(getattr(exc, "status_code", None)) from None
        except trio_websocket.HandshakeError as exc:
            raise _NoWebsocket(str(exc)) from None
        try:
            while True:
                msg = await ws.get_message()
                data = msg.encode() if isinstance(msg, str) else msg
                for ev in iter_json_stream([data]):
                    on_event(ev)
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            with trio.move_on_after(1, shield=True):
                await ws.aclose()
            nursery.cancel_scope.cancel()


@command("events", "Get real time events from the server",
         arg("--since", default=None, help="Show all events created since timestamp"),
         arg("--until", default=None, help="Stream events until this timestamp"),
         arg("-f", "--filter", action="append", default=[], help="Filter output (k=v)"),
         arg("--follow", action="store_true", help="Keep following new events (default "
                                                   "unless --until is given)"),
         arg("--format", default=None, help="Format the output using a Go template"),
         aliases=("system events",))
def events(cli: Cli, a: argparse.Namespace) -> int:
    try:
        since = parse_timestamp(a.since) if a.since else None
        until = parse_timestamp(a.until) if a.until else None
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    fmt = a.format.replace("\\t", "\t").replace("\\n", "\n") if a.format else None

    def emit(ev: dict) -> None:
        if fmt is not None:
            try:
                line = render(fmt, ev)
            except TemplateError as exc:
                raise CommandError(f"template parsing error: {exc}") from None
        else:
            line = format_event(ev)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    params = {k: v for k, v in (("since", since), ("until", until), ("filters", filters)) if v}
    if a.follow or until is None:
        import trio

        try:
            trio.run(follow_ws, cli.host, urllib.parse.urlencode(params), emit)
            return 0
        except _NoWebsocket:
            pass  # fall back to the streaming endpoint
    with cli.client.stream("GET", "/events", params=params) as resp:
        for ev in iter_json_stream(resp.iter_raw()):
            emit(ev)
    return 0
