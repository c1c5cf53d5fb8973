"""`up` scheduling over a fake Engine API (no daemon): every container is created first (as
Docker Compose does); services whose dependencies are met start concurrently (their fake
starts meet at a barrier, which sequential starts would never reach), dependents start only
after them, health-gated and completion-gated dependencies are waited for, and `down` stops
dependents first."""

from __future__ import annotations

import textwrap
import threading

import pytest

from engine.compose import ComposeError, LoadOptions, Session, UpOptions, down, load_project, up
from engine.compose.errors import first_error
from engine.compose.progress import QuietProgress

class FakeApi:
    """Just enough of engine.compose.api.Api: containers live in a dict; the log holds
    ("start", name) when a start begins and ("started", name) when it ends (same for stops);
    the starts (stops) of the containers in `together` wait for each other."""

    def __init__(self, healthy_after: int = 0, exit_code: int = 0,
                 together: tuple[str, ...] = ()):
        self.made: dict[str, dict] = {}
        self.log: list[tuple[str, str]] = []
        self.running = 0
        self.max_running_starts = 0
        self.healthy_after = healthy_after  # inspections of a started container
        self.exit_code = exit_code
        self.together = set(together)
        self.barrier = threading.Barrier(len(together) or 1, timeout=10)
        self.lock = threading.Lock()

    def _meet(self, name: str) -> None:
        if name in self.together:
            self.barrier.wait()  # BrokenBarrierError: they were not concurrent

    def get_or_none(self, path, **kw):
        if path.startswith("/images/"):
            return {"Id": "sha256:img"}
        return None if path.startswith(("/networks/", "/volumes/")) else {}

    def containers(self, filters, all=True):
        return [{"Id": c["Id"], "Names": ["/" + c["Name"]], "Labels": c["Labels"],
                 "State": c["State"], "ImageID": "sha256:img"} for c in self.made.values()]

    def post(self, path, body=None, **kw):
        if path == "/containers/create":
            name = kw["params"]["name"]
            self.made[name] = {"Id": name, "Name": name, "Labels": body["Labels"],
                               "State": "created", "Healthcheck": body.get("Healthcheck"),
                               "inspected": 0}
            return {"Id": name}
        name = path.split("/")[2] if path.startswith("/containers/") else ""
        if path.endswith("/start"):
            with self.lock:
                self.log.append(("start", name))
                self.running += 1
                self.max_running_starts = max(self.max_running_starts, self.running)
            self._meet(name)
            with self.lock:
                self.running -= 1
                self.made[name]["State"] = "running"
                self.log.append(("started", name))
            return None
        if path.endswith("/stop"):
            self.log.append(("stop", name))
            self._meet(name)
            self.made[name]["State"] = "exited"
            self.log.append(("stopped", name))
            return None
        return {}

    def delete(self, path, **kw):
        self.made.pop(path.split("/")[2], None)

    def get(self, path, **kw):
        name = path.split("/")[2]
        c = self.made[name]
        state = {"Status": c["State"], "Running": c["State"] == "running"}
        if c["Healthcheck"]:
            if c["State"] == "running":
                c["inspected"] += 1
            healthy = c["inspected"] > self.healthy_after
            if healthy and ("healthy", name) not in self.log:
                self.log.append(("healthy", name))
            state["Health"] = {"Status": "healthy" if healthy else "starting"}
        return {"Name": "/" + name, "State": state, "Config": {"Healthcheck": c["Healthcheck"]}}

    def wait(self, cid, condition="not-running"):
        self.made[cid]["State"] = "exited"
        self.log.append(("waited", cid))
        return self.exit_code


def project(tmp_path, text):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    return load_project(LoadOptions(environ={}, cwd=str(tmp_path), project_name="p"))


CHAIN = """\
    services:
      a: {image: busybox}
      b: {image: busybox}
      c: {image: busybox}
      d: {image: busybox, depends_on: [a, b]}
      e: {image: busybox, depends_on: [c, d]}
    """


def after(log, what: tuple[str, str], *before: tuple[str, str]) -> bool:
    return all(log.index(what) > log.index(b) for b in before)


def test_independent_services_start_together_dependents_after(tmp_path):
    api = FakeApi(together=("p-a-1", "p-b-1", "p-c-1"))
    s = Session(api, project(tmp_path, CHAIN), QuietProgress(), lambda m: None)
    up(s, UpOptions())
    assert api.max_running_starts == 3
    assert after(api.log, ("start", "p-d-1"), ("started", "p-a-1"), ("started", "p-b-1"))
    assert after(api.log, ("start", "p-e-1"), ("started", "p-c-1"), ("started", "p-d-1"))
    # up again: nothing to do
    api.log.clear()
    up(s, UpOptions())
    assert api.log == []
    # down: reverse order, dependents stopped first; a and b together once d is down
    api.together, api.barrier = {"p-a-1", "p-b-1"}, threading.Barrier(2, timeout=10)
    down(s)
    assert after(api.log, ("stop", "p-d-1"), ("stopped", "p-e-1"))
    assert after(api.log, ("stop", "p-c-1"), ("stopped", "p-e-1"))
    assert after(api.log, ("stop", "p-a-1"), ("stopped", "p-d-1"))
    assert after(api.log, ("stop", "p-b-1"), ("stopped", "p-d-1"))
    assert api.made == {}


def test_health_and_completion_gates(tmp_path):
    text = """\
        services:
          db:
            image: busybox
            healthcheck: {test: ["CMD", "true"], interval: 1s}
          init: {image: busybox}
          app:
            image: busybox
            depends_on:
              db: {condition: service_healthy}
              init: {condition: service_completed_successfully}
        """
    api = FakeApi(healthy_after=2)
    s = Session(api, project(tmp_path, text), QuietProgress(), lambda m: None)
    up(s, UpOptions())
    assert after(api.log, ("start", "p-app-1"), ("healthy", "p-db-1"), ("waited", "p-init-1"))

    failing = FakeApi(exit_code=2)
    s = Session(failing, project(tmp_path, text), QuietProgress(), lambda m: None)
    with pytest.raises(BaseExceptionGroup) as info:
        up(s, UpOptions())
    error = first_error(info.value, (ComposeError,))
    assert error is not None and "didn't complete successfully: exit 2" in str(error)
    # as Docker Compose: every container is created first, a gated one is never started
    assert failing.made["p-app-1"]["State"] == "created"
    assert ("start", "p-app-1") not in failing.log
