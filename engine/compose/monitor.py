"""A project's containers as they come and go, from the daemon's event stream (what foreground
`up` and `logs -f` follow, as Docker Compose's monitor does): created/started containers join
the watched set, a container that dies for good (not restarting) or is removed leaves it; the
watch ends when the set is empty."""

from __future__ import annotations

import json
import queue
from dataclasses import dataclass
from typing import Iterable, Iterator

from . import labels as L
from . import tasks
from .session import Session

CREATED, STARTED, EXITED = "created", "started", "exited"


@dataclass(frozen=True)
class ContainerEvent:
    kind: str  # CREATED | STARTED | EXITED
    id: str
    service: str
    name: str  # web-1 (the project prefix left out, as Compose prints it)
    exit_code: int = 0
    restarting: bool = False  # STARTED after a restart, or EXITED to be restarted


def short_name(project: str, name: str) -> str:
    name = name.lstrip("/")
    return name[len(project) + 1:] if name.startswith(f"{project}-") else name


class Monitor:
    """Opened (subscribed) before the caller acts, so no event after that is missed; then
    `events()` yields the watched containers' events until none is left."""

    def __init__(self, s: Session, services: Iterable[str] | None = None):
        self.s = s
        self.services = set(services or ())
        self.watched: set[str] = set()
        self._events: queue.Queue = queue.Queue()

    def _wanted(self, service: str) -> bool:
        return not self.services or service in self.services

    def open(self, group: tasks.TaskGroup) -> None:
        """Subscribe to the project's container events (the reader runs in `group`)."""
        filters = json.dumps({"type": ["container"],
                              "label": [f"{L.PROJECT}={self.s.project.name}"]})
        self.s.api.watch_events(filters, self._events, group)

    def watch(self, containers: Iterable[dict]) -> None:
        """Add containers (API summaries) already there to the watched set."""
        for c in containers:
            if self._wanted((c.get("Labels") or {}).get(L.SERVICE, "")):
                self.watched.add(c["Id"])

    def events(self) -> Iterator[ContainerEvent]:
        restarting: set[str] = set()
        while self.watched:
            ev = tasks.receive(self._events)
            actor = ev.get("Actor") or {}
            attrs_ = actor.get("Attributes") or {}
            cid = actor.get("ID") or ev.get("id") or ""
            service = attrs_.get(L.SERVICE, "")
            if attrs_.get(L.ONEOFF) == "True" or not self._wanted(service):
                continue
            name = short_name(self.s.project.name, attrs_.get("name", cid[:12]))
            action = ev.get("Action") or ev.get("status") or ""
            if action == "create":
                self.watched.add(cid)
                yield ContainerEvent(CREATED, cid, service, name)
            elif action == "start":
                self.watched.add(cid)
                again = cid in restarting
                restarting.discard(cid)
                yield ContainerEvent(STARTED, cid, service, name, restarting=again)
            elif action == "die" and cid in self.watched:
                code = int(attrs_.get("exitCode") or 0)
                info = self.s.api.get_or_none(f"/containers/{cid}/json")
                state = (info or {}).get("State") or {}
                if state.get("Restarting") or state.get("Running"):
                    restarting.add(cid)
                    yield ContainerEvent(EXITED, cid, service, name, code, restarting=True)
                else:
                    self.watched.discard(cid)
                    yield ContainerEvent(EXITED, cid, service, name, code)
            elif action == "destroy":
                self.watched.discard(cid)
