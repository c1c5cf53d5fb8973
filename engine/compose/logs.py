"""`logs [-f]`: every container's log stream read concurrently, printed line by line with a
coloured `service-N  | ` prefix (no colour when not on a terminal or with --no-color). With
-f the project's events are followed too: containers started later (scale up, recreate,
restart) are picked up, as Docker Compose does."""

from __future__ import annotations

import datetime
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

from engine.cli import Demuxer

from . import labels as L
from . import tasks
from .monitor import EXITED, STARTED, Monitor
from .session import Session, container_name

COLOURS = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"]
EXIT_LINE_WAIT = 5.0  # seconds an exit notice waits for the container's last lines


class Prefixer:
    """Colours services in first-seen order and aligns the prefixes (the width grows with
    the longest name seen)."""

    def __init__(self, width: int, colour: bool, enabled: bool = True):
        self.width = width
        self.colour = colour
        self.enabled = enabled
        self._colours: dict[str, str] = {}

    def __call__(self, service: str, name: str) -> str:
        if not self.enabled:
            return ""
        self.width = max(self.width, len(name))
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


def _stdout_write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@dataclass
class LogPrinter:
    """Log streams of containers, each pumped by a task of `group` into `write` (one whole
    line at a time, never two at once)."""

    s: Session
    group: tasks.TaskGroup
    prefixer: Prefixer
    write: Callable[[str], None] = _stdout_write
    timestamps: bool = False
    # container id -> its stream ended
    streams: dict[str, tasks.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, text: str) -> None:
        with self._lock:
            self.write(text + "\n")

    def attach(self, cid: str, name: str, service: str, *, follow: bool, tail: str = "all",
               since: float | None = None) -> tasks.Event:
        """Start streaming one container's logs; returns an event set when its stream ends."""
        ended = self.streams[cid] = tasks.Event()
        prefix = self.prefixer(service, name)
        self.group.start_soon(self._pump, cid, prefix, ended,
                              {"stdout": True, "stderr": True, "follow": follow,
                                 "tail": tail, "timestamps": self.timestamps or None,
                                 "since": f"{since:.9f}" if since is not None else None})
        return ended

    def _pump(self, cid: str, prefix: str, ended: tasks.Event, params: dict) -> None:
        try:
            info = self.s.api.get_or_none(f"/containers/{cid}/json")
            if info is None:
                return
            tty = bool((info.get("Config") or {}).get("Tty"))
            tasks.abandon_on_cancel(self._read, cid, prefix, params, tty)
        finally:
            ended.set()

    def _read(self, cid: str, prefix: str, params: dict, tty: bool) -> None:
        """In a helper thread: demultiplex, split into lines, write whole lines."""
        demux = Demuxer()
        pending = {1: b"", 2: b""}

        def emit(stream: int, data: bytes) -> None:
            pending[stream] += data
            *lines, pending[stream] = pending[stream].split(b"\n")
            for line in lines:
                with self._lock:
                    self.write(prefix + line.decode("utf-8", "replace") + "\n")

        def sink(chunk: bytes) -> None:
            if tty:
                emit(1, chunk)
                return
            for stream, payload in demux.feed(chunk):
                emit(2 if stream == 2 else 1, payload)

        self.s.api.stream_lines(f"/containers/{cid}/logs", params, sink)
        for stream in (1, 2):
            if pending[stream]:
                emit(stream, b"\n")

    def announce_exit(self, cid: str, name: str, code: int) -> None:
        """Compose's "web-1 exited with code 0", after the container's last lines."""
        ended = self.streams.get(cid)
        if ended is not None:
            with tasks.CancelScope(timeout=EXIT_LINE_WAIT):
                ended.wait()
        self.line(f"{name} exited with code {code}")


def _sorted(containers: list[dict]) -> list[dict]:
    return sorted(containers, key=lambda c: ((c.get("Labels") or {}).get(L.SERVICE, ""),
                                             L.number_of(c)))


def follow(s: Session, services: list[str] | None = None, *, follow: bool,
           tail: str = "all", timestamps: bool = False, colour: bool | None = None,
           prefix: bool = True, write: Callable[[str], None] | None = None) -> None:
    """Print the project's containers' logs (those of `services`, all when empty). Without
    follow: what they have logged. With follow: until no container is left to follow,
    taking in the containers that start meanwhile."""
    if colour is None:
        colour = sys.stdout.isatty()

    def selected(containers: list[dict]) -> list[dict]:
        return _sorted([c for c in containers if not services or
                        (c.get("Labels") or {}).get(L.SERVICE) in services])

    with tasks.TaskGroup() as nursery:
        monitor = Monitor(s, services)
        with tasks.TaskGroup() as watching:
            if follow:
                monitor.open(watching)  # subscribed first: no start is missed
            containers = selected(s.containers())
            names = [display_name(s, c) for c in containers]
            printer = LogPrinter(s, nursery, Prefixer(max([len(n) for n in names] + [1]),
                                                      colour, prefix),
                                 write or _stdout_write, timestamps)
            for c, name in zip(containers, names):
                printer.attach(c["Id"], name, (c.get("Labels") or {}).get(L.SERVICE, ""),
                               follow=follow, tail=tail)
            if follow:
                monitor.watch(containers)
                for ev in monitor.events():
                    if ev.kind == STARTED and (ev.id not in printer.streams or ev.restarting):
                        since = started_at(s, ev.id) if ev.restarting else None
                        printer.attach(ev.id, ev.name, ev.service, follow=True, since=since)
                    elif ev.kind == EXITED and not ev.restarting:
                        nursery.start_soon(printer.announce_exit, ev.id, ev.name, ev.exit_code)
            watching.cancel_scope.cancel()


def started_at(s: Session, cid: str) -> float | None:
    """When the container's current run started (epoch seconds): a restarted container's
    logs are followed from there, not from its first run."""
    info = s.api.get_or_none(f"/containers/{cid}/json")
    stamp = ((info or {}).get("State") or {}).get("StartedAt") or ""
    if not stamp or stamp.startswith("0001-"):
        return None
    head, _, frac = stamp.rstrip("Z").partition(".")
    when = datetime.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()
