"""docker-compose 1.29 (Debian's, on docker-py 5) drives a private pyengined: a network, a
named volume, service-name DNS, logs, ps, down -v."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.conftest import needs_root

COMPOSE = shutil.which("docker-compose")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(COMPOSE is None, reason="docker-compose not installed")]

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: sh -c "echo hello-from-web > /www/index.html && httpd -f -p 80 -h /www"
    volumes:
      - www:/www
    networks: [appnet]
  client:
    image: busybox
    command: sh -c "until wget -qO- http://web/; do sleep 0.2; done; sleep 1000"
    depends_on: [web]
    networks: [appnet]
volumes:
  www:
networks:
  appnet:
"""


def test_compose_up_logs_down(daemon, tmp_path):
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)

    def compose(*args, check=True):
        result = subprocess.run([COMPOSE, "-p", "pecompose", *args], cwd=tmp_path, env=daemon.env(),
                                capture_output=True, timeout=120)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    try:
        compose("up", "-d")
        deadline = time.monotonic() + 30
        logs = b""
        while time.monotonic() < deadline and b"hello-from-web" not in logs:
            time.sleep(0.3)
            logs = compose("logs", "--no-color", "client").stdout
        assert b"hello-from-web" in logs
        ps = compose("ps").stdout.decode()
        assert "pecompose_web_1" in ps and "Up" in ps
    finally:
        compose("down", "-v", check=False)
    networks = daemon.api("GET", "/networks").json()
    assert not [n for n in networks if n["Name"].startswith("pecompose")]
    volumes = daemon.api("GET", "/volumes").json()["Volumes"] or []
    assert not [v for v in volumes if v["Name"].startswith("pecompose")]
    assert not [c for c in daemon.api("GET", "/containers/json", params={"all": 1}).json()
                if c["Names"][0].startswith("/pecompose")]
