"""`pyengine compose` following a project as Docker Compose v2 does: foreground `up` with
--abort-on-container-exit / --exit-code-from, SIGINT stopping the project (a second one
killing it), and `logs -f` taking in containers that start later (scale up, recreate)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.acceptance import test_pyengine_compose as base
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.acceptance]

IDLE = base.IDLE
compose = base.compose  # the fixture: a project named after the test, taken down after it


class Follower:
    """A long-running `pyengine compose …` whose output lines are read as they come."""

    def __init__(self, compose, *args):
        cmd = [sys.executable, "-m", "engine.cli", "-H", compose.daemon.host, "compose",
               "-p", compose.project, "--ansi", "never", *args]
        self.proc = subprocess.Popen(cmd, cwd=compose.dir, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=compose.daemon.env())
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self._queue.put(" ".join(raw.decode().split()))
        self._queue.put(None)

    def wait_line(self, predicate, timeout: float = 60) -> str:
        """The first line (seen or to come) for which predicate holds."""
        for line in self.lines:
            if predicate(line):
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no such line in: {self.lines}")

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def ps_rows(compose) -> list[dict]:
    return json.loads(compose("ps", "-a", "--format", "json").stdout)


def test_abort_on_exit_and_exit_code_from(compose, tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          job:
            image: busybox
            command: ["sh", "-c", "echo job-done; exit 3"]
          server:
            image: busybox
            command: ["sh", "-c", "echo serving; {IDLE}"]
        """))
    # bad input: one line, nothing created
    for args, message in [
            (["--exit-code-from", "nope"], "no such service: nope"),
            (["-d", "--abort-on-container-exit"], "--detach cannot be combined with "
             "--abort-on-container-exit, --abort-on-container-failure, --attach or "
             "--attach-dependencies"),
            (["--attach", "nope"], "cannot attach to services not included in up: nope")]:
        result = compose("up", *args, check=False)
        assert result.returncode == 1
        assert result.stderr.decode().strip() == message
    assert compose.ids() == {}

    # the first exit stops the project; up exits with that container's code
    result = compose("--ansi", "never", "up", "--abort-on-container-exit", check=False)
    out = [" ".join(line.split()) for line in result.stdout.decode().splitlines()]
    assert result.returncode == 3, result.stderr
    assert "job-1 | job-done" in out and "job-1 exited with code 3" in out
    assert "server-1 exited with code 0" in out  # stopped by the abort (SIGTERM, trapped)
    assert "Aborting on container exit..." in result.stderr.decode()
    states = {r["Service"]: r["State"] for r in ps_rows(compose)}
    assert states == {"job": "exited", "server": "exited"}

    # --exit-code-from: the named service's code, whichever container stopped first
    assert compose("up", "--exit-code-from", "server", check=False).returncode == 0
    assert compose("up", "--exit-code-from", "job", check=False).returncode == 3
    # --attach: only that service's lines
    result = compose("--ansi", "never", "up", "--attach", "job", "--exit-code-from", "job",
                     check=False)
    assert result.returncode == 3
    assert "serving" not in result.stdout.decode() and "job-done" in result.stdout.decode()


def test_foreground_up_sigint_stops_then_kills(compose, tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          stubborn:
            image: busybox
            command: ["sh", "-c", "trap 'echo got-term' TERM; echo ready; while true; do sleep 0.1; done"]
          polite:
            image: busybox
            command: ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done"]
        """))
    up = Follower(compose, "up", "-t", "60")
    try:
        up.wait_line(lambda line: line == "stubborn-1 | ready")
        up.wait_line(lambda line: line == "polite-1 | ready")
        up.proc.send_signal(signal.SIGINT)  # graceful: SIGTERM to each container
        up.wait_line(lambda line: line == "stubborn-1 | got-term")
        up.wait_line(lambda line: line == "polite-1 exited with code 0")
        up.proc.send_signal(signal.SIGINT)  # forced: SIGKILL
        assert up.finish() == 130
    finally:
        up.kill()
    assert "stubborn-1 exited with code 137" in up.lines
    assert "polite-1 | bye" in up.lines
    assert {r["State"] for r in ps_rows(compose)} == {"exited"}


def test_logs_follow_takes_in_new_containers(compose, tmp_path):
    service = textwrap.dedent(f"""\
        services:
          web:
            image: busybox
            environment: {{GEN: "%s"}}
            command: ["sh", "-c", "echo gen-$$GEN-$$HOSTNAME; {IDLE}"]
        """)
    (tmp_path / "compose.yaml").write_text(service % "one")
    compose("up", "-d")
    logs = Follower(compose, "logs", "-f")
    try:
        logs.wait_line(lambda line: line.startswith("web-1 | gen-one-"))
        compose("up", "-d", "--scale", "web=2")  # a container started later
        logs.wait_line(lambda line: line.startswith("web-2 | gen-one-"))
        (tmp_path / "compose.yaml").write_text(service % "two")
        compose("up", "-d", "--scale", "web=2")  # both recreated
        logs.wait_line(lambda line: line.startswith("web-1 | gen-two-"))
        logs.wait_line(lambda line: line.startswith("web-2 | gen-two-"))
        compose("down", "-t", "5")  # nothing left to follow: logs -f ends by itself
        assert logs.finish() == 0
    finally:
        logs.kill()
