"""engine.compose.monitor over a fake event stream (no daemon): containers created/started
later join the watched set, a restart is reported as such, a final die or a destroy leaves
it, other services and one-off containers are ignored, and the watch ends when none is left."""

from __future__ import annotations

import pytest

from engine.compose import labels as L
from engine.compose import tasks
from engine.compose.model import Project
from engine.compose.monitor import CREATED, EXITED, STARTED, Monitor
from engine.compose.session import Session


def _event(action: str, cid: str, service: str = "web", oneoff: str = "False", **attrs) -> dict:
    attributes = {"name": f"demo-{service}-{cid}", L.SERVICE: service, L.ONEOFF: oneoff,
                  L.PROJECT: "demo", **attrs}
    return {"Type": "container", "Action": action, "Actor": {"ID": cid, "Attributes": attributes}}


class FakeApi:
    def __init__(self, events: list[dict], restarting: set[str]):
        self.events = events
        self.restarting = restarting

    def watch_events(self, filters, send, group):
        for ev in self.events:
            send.put(ev)

    def get_or_none(self, path, **kw):
        cid = path.split("/")[2]
        return {"State": {"Restarting": cid in self.restarting, "Running": False}}


def test_watch_follows_the_project_until_no_container_is_left():
    events = [
        _event("start", "db1", service="db"),  # not a watched service
        _event("create", "2"), _event("start", "2"),  # scaled up later
        _event("start", "run1", oneoff="True"),  # a one-off container
        _event("die", "1", exitCode="1"),  # restarting: still watched
        _event("start", "1"),
        _event("die", "2", exitCode="0"),
        _event("die", "1", exitCode="137"),
        _event("start", "late"),  # never reached: nothing was left to watch
    ]
    api = FakeApi(events, restarting={"1"})
    project = Project(name="demo", working_dir="/", config_files=[], services={})
    s = Session(api, project, progress=None)
    seen = []
    with tasks.TaskGroup() as group:
        monitor = Monitor(s, ["web"])
        monitor.open(group)
        monitor.watch([{"Id": "1", "Labels": {L.SERVICE: "web"}},
                       {"Id": "db1", "Labels": {L.SERVICE: "db"}}])
        for ev in monitor.events():
            seen.append((ev.kind, ev.id, ev.exit_code, ev.restarting))
            if ev.kind == STARTED:
                api.restarting.discard(ev.id)  # its next die is a final one
        group.cancel_scope.cancel()
    assert seen == [(CREATED, "2", 0, False), (STARTED, "2", 0, False),
                    (EXITED, "1", 1, True), (STARTED, "1", 0, True),
                    (EXITED, "2", 0, False), (EXITED, "1", 137, False)]


@pytest.mark.timeout(10)
def test_a_removed_container_leaves_the_watch():
    api = FakeApi([_event("destroy", "1")], restarting=set())
    project = Project(name="demo", working_dir="/", config_files=[], services={})
    s = Session(api, project, progress=None)
    with tasks.TaskGroup() as group:
        monitor = Monitor(s)
        monitor.open(group)
        monitor.watch([{"Id": "1", "Labels": {L.SERVICE: "web"}}])
        assert list(monitor.events()) == []
        group.cancel_scope.cancel()
