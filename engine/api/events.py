"""GET /events (newline-delimited JSON, like dockerd) and GET /events/ws (a websocket, one
JSON text message per event; `pyengine events --follow` reads it with trio-websocket).

Both take Docker's `since`, `until` and `filters` query params. A subscriber too slow to keep
up is dropped by the bus; we end its stream (the client reconnects with `since`)."""

from __future__ import annotations

import json
import logging

import trio

from engine.errors import InvalidParameter, Unavailable
from engine.events import LAGGED, parse_filters, parse_time

from ._request import Request
from ._responses import Response, StreamingResponse
from ._router import Router
from ._websocket import WebSocket

router = Router()
log = logging.getLogger("engine.api")


def _bus(req: Request):
    bus = getattr(req.daemon, "events", None)
    if bus is None:
        raise Unavailable("the event bus is not running")
    return bus


def _params(req: Request):
    # Validate here so a bad value is a 400 before any header goes out.
    since = req.query.get("since") or None
    until = req.query.get("until") or None
    since_ns, until_ns = parse_time(since), parse_time(until)
    if since_ns is not None and until_ns is not None and until_ns < since_ns:
        raise InvalidParameter(f"`since` time ({since}) cannot be after `until` time ({until})")
    filters = parse_filters(req.query.get("filters"))
    return since, until, filters


@router.get("/events")
async def events(req: Request) -> Response:
    bus = _bus(req)
    since, until, filters = _params(req)

    # Subscribe before the headers go out (as dockerd): a client that saw the headers and
    # then triggers an action must see its event.
    sub = bus.open_subscription(since=since, until=until, filters=filters)

    async def stream():
        try:
            async for ev in sub:
                if ev is LAGGED:
                    log.info("events subscriber lagged; closing its stream")
                    return
                yield json.dumps(ev).encode() + b"\n"
        finally:
            sub.close()

    return StreamingResponse(stream(), "application/json", on_close=sub.close)


@router.websocket("/events/ws")
async def events_ws(req: Request, ws: WebSocket) -> None:
    bus = _bus(req)
    since, until, filters = _params(req)
    sub = bus.open_subscription(since=since, until=until, filters=filters)
    try:
        await ws.accept()
    except BaseException:
        sub.close()
        raise
    async with trio.open_nursery() as nursery:

        async def watch_client() -> None:
            await ws.wait_closed()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_client)
        async with sub:
            async for ev in sub:
                if ev is LAGGED:
                    await ws.close(1013, "lagged")  # "try again later"
                    break
                await ws.send_text(json.dumps(ev))
        if not ws.closed:
            await ws.close(1000)
        nursery.cancel_scope.cancel()
