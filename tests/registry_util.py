"""A private Debian `docker-registry` (distribution 2.8) for tests: temp storage, a free
loopback port, optional htpasswd (bcrypt) auth. Stopped in teardown."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    try:
        import bcrypt

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"
    except ImportError:
        pass
    if shutil.which("htpasswd") is None:
        pytest.skip("neither python bcrypt nor htpasswd (apache2-utils) is installed")
    out = subprocess.run(["htpasswd", "-Bbn", "-C", "5", user, password], check=True,
                         capture_output=True, text=True).stdout
    return out.strip()


class RegistryHandle:
    def __init__(self, root: str, port: int, process: subprocess.Popen, log_path: str):
        self.root, self.port, self.process, self.log_path = root, port, process, log_path
        self.host = f"127.0.0.1:{port}"

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_registry(auth: tuple[str, str] | None = None) -> RegistryHandle:
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    root = tempfile.mkdtemp(prefix="pe-registry-")
    port = free_port()
    lines = [
        "version: 0.1",
        "log:", "  level: warn", "  accesslog:", "    disabled: true",
        "storage:", "  filesystem:", f"    rootdirectory: {root}/data", "  delete:", "    enabled: true",
        "http:", f"  addr: 127.0.0.1:{port}",
    ]
    if auth:
        with open(os.path.join(root, "htpasswd"), "w") as f:
            f.write(htpasswd_line(*auth) + "\n")
        lines += ["auth:", "  htpasswd:", "    realm: pyengine-test", f"    path: {root}/htpasswd"]
    with open(os.path.join(root, "config.yml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    log_path = os.path.join(root, "registry.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", os.path.join(root, "config.yml")],
                                stdout=log, stderr=subprocess.STDOUT)
    handle = RegistryHandle(root, port, proc, log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited early:\n{handle.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return handle
        except OSError:
            time.sleep(0.05)
    handle.stop()
    raise RuntimeError("docker-registry did not come up")
