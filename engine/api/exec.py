"""Docker's exec routes: create, start (hijacked or detached), inspect, resize."""

from __future__ import annotations

import json

import trio

from engine import errors
from engine.api import _container_json as container_json
from engine.api._detach import Detacher, parse_detach_keys
from engine.api._hijack import MULTIPLEXED, RAW_STREAM, HijackedStream
from engine.api._request import Request
from engine.api._responses import empty, json_response
from engine.api._router import Router

router = Router()


@router.post("/containers/{id}/exec")
async def create(req: Request):
    body = await req.json(default=None)
    if body is None:
        raise errors.InvalidParameter("exec config must not be empty")
    keys = container_json.detach_keys(body) if isinstance(body, dict) else None
    if keys:
        try:
            parse_detach_keys(keys)
        except errors.InvalidParameter:
            raise errors.InvalidParameter(f"Invalid escape keys ({keys}) provided") from None
    instance = req.daemon.execs.create(req.params["id"], container_json.exec_config(body))
    return json_response({"Id": instance.id}, status=201)


@router.hijack("POST", "/exec/{id}/start")
async def start(req: Request, stream: HijackedStream):
    execs = req.daemon.execs
    instance = execs.get(req.params["id"])
    raw = await req.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise errors.InvalidParameter(f"invalid JSON: {exc}") from None
    # The process gets a TTY if the exec was created with one; the start body's Tty only
    # chooses the framing (raw, or multiplexed stdout/stderr frames), as in dockerd.
    process_tty = instance.config.tty
    tty = body.get("Tty")
    tty = process_tty if tty is None else bool(tty)
    if body.get("Detach"):
        await execs.start(instance.id, sink=None)
        await stream.respond(empty(200))
        return
    detached = False

    async def on_detach() -> None:
        nonlocal detached
        detached = True
        containers = req.daemon.containers
        containers.publish(containers.get(instance.container_id), "exec_detach", execID=instance.id)
        with trio.CancelScope(shield=True):
            await stream.aclose()

    detacher = Detacher(parse_detach_keys(instance.config.detach_keys or None), on_detach)

    async def sink(stream_id: int, data: bytes) -> None:
        if detached:
            return  # the client detached: the process runs on, its output goes nowhere
        if stream_id == 1 and instance.config.attach_stdout is False:
            return
        if stream_id == 2 and instance.config.attach_stderr is False:
            return
        if tty:
            await stream.send_all(data)
        else:
            await stream.send_frame(stream_id, data)

    stdin = None
    if instance.config.attach_stdin:
        # dockerd watches for the detach keys on a TTY's stdin only.
        stdin = detacher.filter(stream.chunks()) if process_tty else stream.chunks()
    execs.check_startable(instance.id)
    # Upgrade before spawning, as dockerd does: clients such as docker-py read the raw socket
    # right after the headers, so output must not race ahead of them.
    await stream.upgrade(RAW_STREAM if tty else MULTIPLEXED)

    try:
        await execs.start(instance.id, sink=sink, stdin_chunks=stdin)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except errors.EngineError as exc:
        if not stream.upgraded:
            raise
        # Headers are gone: Docker prints the error into the stream.
        await sink(1, (exc.message + "\r\n").encode())
    finally:
        if stream.upgraded:
            with trio.CancelScope(shield=True):
                await stream.aclose()


@router.get("/exec/{id}/json")
async def inspect(req: Request):
    return json_response(container_json.exec_shape(req.daemon.execs.get(req.params["id"])))


@router.post("/exec/{id}/resize")
async def resize(req: Request):
    await req.daemon.execs.resize(req.params["id"], req.query.int("h", 0), req.query.int("w", 0))
    return empty(200)
