"""`pyengine compose ls` (projects known from labels alone), `-f -` (the file from standard
input, the current directory as the project's), and secrets/configs whose content comes from
the environment or the file itself, found under /run/secrets like file-based ones."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.acceptance import test_pyengine_compose as base
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.acceptance]

IDLE = base.IDLE
compose = base.compose  # the fixture: a project named after the test, taken down after it


def test_ls_and_file_from_stdin(compose, daemon, tmp_path):
    (tmp_path / "data.txt").write_text("from-the-cwd")
    document = textwrap.dedent(f"""\
        services:
          app:
            image: busybox
            command: ["sh", "-c", "{IDLE}"]
            deploy: {{replicas: 2}}
            volumes: ["./data.txt:/data.txt:ro"]
        """)
    up = subprocess.run([sys.executable, "-m", "engine.cli", "-H", daemon.host, "compose",
                         "-p", compose.project, "-f", "-", "up", "-d"], input=document.encode(),
                        cwd=tmp_path, capture_output=True, timeout=120, env=daemon.env())
    assert up.returncode == 0, up.stderr
    # relative paths in a file from stdin are the current directory's
    cat = subprocess.run([sys.executable, "-m", "engine.cli", "-H", daemon.host, "exec",
                          f"{compose.project}-app-1", "cat", "/data.txt"],
                         capture_output=True, timeout=60)
    assert cat.stdout == b"from-the-cwd", cat.stderr

    def listed(*args) -> dict[str, dict]:
        rows = json.loads(compose("ls", "--format", "json", *args).stdout)
        return {r["Name"]: r for r in rows}

    row = listed()[compose.project]
    assert row["Status"] == "running(2)"
    assert compose.project in compose("ls", "-q").stdout.decode().split()
    table = compose("ls", "--filter", f"name=^{compose.project}$").stdout.decode().splitlines()
    assert table[0].split() == ["NAME", "STATUS", "CONFIG", "FILES"]
    assert [line.split()[:2] for line in table[1:]] == [[compose.project, "running(2)"]]

    compose("stop", "-t", "1")
    assert compose.project not in listed()  # only running projects without --all
    assert listed("--all")[compose.project]["Status"] == "exited(2)"
    compose("start")
    stopped = daemon.api("POST", f"/containers/{compose.project}-app-1/stop", params={"t": 1})
    assert stopped.status_code == 204
    assert listed("-a")[compose.project]["Status"] == "exited(1), running(1)"
    assert listed()[compose.project]["Status"] == "running(1)"
    compose("down", "-t", "1")
    assert compose.project not in listed("-a")
    result = compose("ls", "--filter", "status=running", check=False)
    assert (result.returncode, result.stderr.decode().strip()) == (1, "invalid filter 'status'")


def test_secrets_from_the_environment(compose, daemon, tmp_path):
    (tmp_path / "token.txt").write_text("from-a-file")
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          app:
            image: busybox
            command: ["sh", "-c", "{IDLE}"]
            secrets:
              - api_key
              - token
              - {{source: api_key, target: again, mode: 0444}}
            configs:
              - {{source: greeting, target: /etc/greeting}}
        secrets:
          api_key: {{environment: API_KEY}}
          token: {{file: ./token.txt}}
        configs:
          greeting: {{content: "hello $${{USER_NAME}}"}}
        """))
    result = compose("up", "-d", check=False)
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1] == \
        "environment variable 'API_KEY' required by secret 'api_key' is not set"
    assert compose.ids() == {}

    compose("up", "-d", env={"API_KEY": "s3cret"})
    read = compose("exec", "-T", "app", "sh", "-c",
                   "cat /run/secrets/api_key /run/secrets/token /run/secrets/again "
                   "/etc/greeting; stat -c %a /run/secrets/api_key /run/secrets/again").stdout
    assert read.decode().split("\n") == ["s3cretfrom-a-files3crethello ${USER_NAME}400",
                                         "444", ""]
    # a one-off container gets them too
    out = compose("run", "--rm", "-T", "app", "cat", "/run/secrets/api_key",
                  env={"API_KEY": "other"}).stdout
    assert out == b"other"


def test_rmi_local_leaves_nothing_the_builds_made(compose, daemon, tmp_path):
    def all_images() -> set[str]:
        return {i["Id"] for i in daemon.api("GET", "/images/json", params={"all": 1}).json()}

    before = all_images()
    dockerfile = textwrap.dedent(f"""\
        FROM busybox AS base
        RUN echo {compose.project}-%s > /stage
        FROM busybox
        COPY --from=base /stage /stage
        RUN cat /stage > /final
        """)
    (tmp_path / "Dockerfile").write_text(dockerfile % "one")
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(f"""\
        services:
          implicit:
            build: .
            command: ["sh", "-c", "{IDLE}"]
          named:
            build: .
            image: {compose.project}-custom:1
            command: ["sh", "-c", "{IDLE}"]
        """))
    compose("up", "-d", "--build")
    (tmp_path / "Dockerfile").write_text(dockerfile % "two")  # the first builds now dangle
    compose("up", "-d", "--build")
    assert compose("exec", "-T", "named", "cat", "/final").stdout.strip() == \
        f"{compose.project}-two".encode()
    labels = daemon.api("GET", f"/images/{compose.project}-custom:1/json").json()
    assert labels["Config"]["Labels"]["com.docker.compose.service"] == "named"

    result = compose("down", "--rmi", "bogus", check=False)
    assert (result.returncode, result.stderr.decode().strip()) == \
        (1, "invalid value for --rmi: 'bogus'")
    assert len(compose.ids()) == 2  # refused before anything was touched
    compose("down", "--rmi", "local", "-t", "1")
    assert all_images() == before  # no tag, no dangling build, no parent, no build stage
