"""`up` scheduling over a fake Engine API (trio's autojump clock, no daemon): every container
is created first (as Docker Compose does); services whose dependencies are met start
concurrently, dependents start only after them, health-gated and completion-gated
dependencies are waited for, and `down` stops dependents first."""

from __future__ import annotations

import textwrap

import pytest
import trio

from engine.compose import ComposeError, LoadOptions, Session, UpOptions, down, load_project, up
from engine.compose.errors import first_error
from engine.compose.progress import QuietProgress


class FakeApi:
    """Just enough of engine.compose.api.Api: containers live in a dict; a start takes 1 s."""

    def __init__(self, health_after: float = 0.0, exit_code: int = 0):
        self.made: dict[str, dict] = {}
        self.log: list[tuple[float, str, str]] = []
        self.running = 0
        self.max_running_starts = 0
        self.health_after = health_after
        self.exit_code = exit_code

    def _event(self, what: str, name: str) -> None:
        self.log.append((trio.current_time(), what, name))

    async def get_or_none(self, path, **kw):
        if path.startswith("/images/"):
            return {"Id": "sha256:img"}
        return None if path.startswith(("/networks/", "/volumes/")) else {}

    async def containers(self, filters, all=True):
        return [{"Id": c["Id"], "Names": ["/" + c["Name"]], "Labels": c["Labels"],
                 "State": c["State"], "ImageID": "sha256:img"} for c in self.made.values()]

    async def post(self, path, body=None, **kw):
        if path == "/containers/create":
            name = kw["params"]["name"]
            self.made[name] = {"Id": name, "Name": name, "Labels": body["Labels"],
                                     "State": "created", "Healthcheck": body.get("Healthcheck")}
            return {"Id": name}
        if path.endswith("/start"):
            name = path.split("/")[2]
            self._event("start", name)
            self.running += 1
            self.max_running_starts = max(self.max_running_starts, self.running)
            await trio.sleep(1)
            self.running -= 1
            self.made[name]["State"] = "running"
            self.made[name]["StartedAt"] = trio.current_time()
            return None
        if path.endswith("/stop"):
            name = path.split("/")[2]
            self._event("stop", name)
            await trio.sleep(1)
            self.made[name]["State"] = "exited"
            return None
        return {}

    async def delete(self, path, **kw):
        self.made.pop(path.split("/")[2], None)

    async def get(self, path, **kw):
        name = path.split("/")[2]
        c = self.made[name]
        state = {"Status": c["State"], "Running": c["State"] == "running"}
        if c["Healthcheck"]:
            healthy = trio.current_time() - c.get("StartedAt", 1e9) >= self.health_after
            state["Health"] = {"Status": "healthy" if healthy else "starting"}
        return {"Name": "/" + name, "State": state, "Config": {"Healthcheck": c["Healthcheck"]}}

    async def wait(self, cid, condition="not-running"):
        await trio.sleep(2)
        self.made[cid]["State"] = "exited"
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


async def test_independent_services_start_together_dependents_after(tmp_path, autojump_clock):
    api = FakeApi()
    s = Session(api, project(tmp_path, CHAIN), QuietProgress(), lambda m: None)
    await up(s, UpOptions())
    starts = {name: t for t, what, name in api.log if what == "start"}
    assert starts["p-a-1"] == starts["p-b-1"] == starts["p-c-1"] == 0
    assert starts["p-d-1"] == 1 and starts["p-e-1"] == 2  # each level once the last is up
    assert api.max_running_starts == 3
    # up again: nothing to do
    api.log.clear()
    await up(s, UpOptions())
    assert api.log == []
    # down: reverse order, dependents stopped first
    await down(s)
    stops = {name: t for t, what, name in api.log if what == "stop"}
    assert stops["p-e-1"] < stops["p-d-1"] < stops["p-a-1"] == stops["p-b-1"]
    assert api.made == {}


async def test_health_and_completion_gates(tmp_path, autojump_clock):
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
    api = FakeApi(health_after=5)
    s = Session(api, project(tmp_path, text), QuietProgress(), lambda m: None)
    await up(s, UpOptions())
    starts = {name: t for t, what, name in api.log if what == "start"}
    assert starts["p-app-1"] >= starts["p-db-1"] + 1 + 5  # started + healthy

    failing = FakeApi(exit_code=2)
    s = Session(failing, project(tmp_path, text), QuietProgress(), lambda m: None)
    with pytest.raises(BaseExceptionGroup) as info:
        await up(s, UpOptions())
    error = first_error(info.value, (ComposeError,))
    assert error is not None and "didn't complete successfully: exit 2" in str(error)
    # as Docker Compose: every container is created first, a gated one is never started
    assert failing.made["p-app-1"]["State"] == "created"
    assert not [name for _, what, name in failing.log if what == "start" and name == "p-app-1"]
