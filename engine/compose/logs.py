"""`logs [-f]`: every container's log stream read concurrently, printed line by line with a
coloured `service-N  | ` prefix (no colour when not on a terminal or with --no-color)."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import trio

from engine.cli import Demuxer

from . import labels as L
from .session import Session, container_name

COLOURS = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"]


class Prefixer:
    """Colours services in first-seen order and aligns the prefixes."""

    def __init__(self, width: int, colour: bool):
        self.width = width
        self.colour = colour
        self._colours: dict[str, str] = {}

    def __call__(self, service: str, name: str) -> str:
        text = f"{name:<{self.width}} | "
        if not self.colour:
            return text
        code = self._colours.setdefault(service, COLOURS[len(self._colours) % len(COLOURS)])
        return f"\x1b[{code}m{text}\x1b[0m"


def display_name(s: Session, c: dict) -> str:
    """web-1 for project containers (Docker Compose v2's log prefix)."""
    name = container_name(c)
    prefix = f"{s.project.name}-"
    return name[len(prefix):] if name.startswith(prefix) else name


async def follow(s: Session, containers: list[dict], *, follow: bool, tail: str = "all",
                 timestamps: bool = False, colour: bool | None = None,
                 write: Callable[[str], None] | None = None,
                 announce_exit: bool = False, since: float | None = None) -> None:
    """Print the containers' logs until every stream ends (with follow: until each container
    stops; announce_exit then adds Compose's "web-1 exited with code 0")."""
    if colour is None:
        colour = sys.stdout.isatty()
    write = write or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    names = {c["Id"]: display_name(s, c) for c in containers}
    prefixer = Prefixer(max([len(n) for n in names.values()] + [1]), colour)
    send, receive = trio.open_memory_channel(256)

    def read(c: dict, prefix: str, token: trio.lowlevel.TrioToken, chan, tty: bool) -> None:
        """In a worker thread: demultiplex, split into lines, hand lines to trio."""
        demux = Demuxer()
        pending = {1: b"", 2: b""}

        def emit(stream: int, data: bytes) -> None:
            pending[stream] += data
            *lines, pending[stream] = pending[stream].split(b"\n")
            for line in lines:
                trio.from_thread.run(chan.send, prefix + line.decode("utf-8", "replace") + "\n",
                                     trio_token=token)

        def sink(chunk: bytes) -> None:
            if tty:
                emit(1, chunk)
                return
            for stream, payload in demux.feed(chunk):
                emit(2 if stream == 2 else 1, payload)

        params = {"stdout": True, "stderr": True, "follow": follow, "tail": tail,
                  "timestamps": timestamps or None,
                  "since": f"{since:.9f}" if since is not None else None}
        s.api.stream_lines(f"/containers/{c['Id']}/logs", params, sink)
        for stream in (1, 2):
            if pending[stream]:
                emit(stream, b"\n")

    async def pump(c: dict, prefix: str, send_clone) -> None:
        async with send_clone:
            info = await s.api.get(f"/containers/{c['Id']}/json")
            tty = bool((info.get("Config") or {}).get("Tty"))
            token = trio.lowlevel.current_trio_token()
            await trio.to_thread.run_sync(
                functools.partial(read, c, prefix, token, send_clone, tty),
                abandon_on_cancel=True)
            if announce_exit:
                state = (await s.api.get(f"/containers/{c['Id']}/json")).get("State") or {}
                if not state.get("Running"):
                    await send_clone.send(f"{names[c['Id']]} exited with code "
                                          f"{state.get('ExitCode', 0)}\n")

    async with trio.open_nursery() as nursery:
        async with send:
            for c in containers:
                service = (c.get("Labels") or {}).get(L.SERVICE, "")
                nursery.start_soon(pump, c, prefixer(service, names[c["Id"]]), send.clone())
        async for line in receive:
            write(line)
