"""`pyengined -H tcp://… --tlsverify`: the real docker CLI runs a container over mutual TLS,
and is refused without a client certificate."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from tests.conftest import needs_root, private_daemon
from tests.integration.test_api_server import _make_certs

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None or not shutil.which("openssl"), reason="needs docker CLI and openssl")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_docker_cli_over_mutual_tls():
    port = free_port()

    def tls_listener(handle):
        certs = os.path.join(handle.root, "certs")
        os.makedirs(certs)
        _make_certs(certs)
        handle.extra_args = ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                             "--tlscacert", f"{certs}/ca.pem", "--tlscert", f"{certs}/server.pem",
                             "--tlskey", f"{certs}/server.key"]

    with private_daemon("pe-tls-", prepare=tls_listener) as handle:
        certs = os.path.join(handle.root, "certs")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        tls = ["--tlsverify", "--tlscacert", f"{certs}/ca.pem", "--tlscert", f"{certs}/client.pem",
               "--tlskey", f"{certs}/client.key", "-H", f"tcp://127.0.0.1:{port}"]
        result = subprocess.run([DOCKER, *tls, "run", "--rm", "busybox", "echo", "over-tls"],
                                env=env, capture_output=True, timeout=60)
        assert (result.returncode, result.stdout) == (0, b"over-tls\n"), result.stderr
        no_cert = subprocess.run([DOCKER, "--tlsverify", "--tlscacert", f"{certs}/ca.pem", "-H",
                                  f"tcp://127.0.0.1:{port}", "version"], env=env, capture_output=True, timeout=60)
        assert no_cert.returncode != 0
