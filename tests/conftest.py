"""Shared fixtures: a private pyengined on a temp data root and socket (never the global
ones), a busybox image bootstrapped into it, and clients pointed at it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts, cgroups)")


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    """Poll `predicate` until it returns something true (returned), or fail after `timeout`:
    tests wait on conditions, never on fixed sleeps; generous for a loaded machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def racing_tree(tmp_path, monkeypatch, listing: str):
    """A tree as a container's files (<tmp>/tree/dir/mine, holding "mine") and the race its
    process can run against a walk of them: the first time `os.<listing>` ("listdir",
    "scandir") is asked to list tree/dir (by path or through a handle), dir is renamed to
    dir.moved and a symlink to a host directory holding `secret` ("host secret") takes its
    place. → (the tree's root, a list that holds True once the swap happened)."""
    root, host = tmp_path / "tree", tmp_path / "host"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "mine").write_text("mine")
    host.mkdir()
    (host / "secret").write_text("host secret")
    real = getattr(os, listing)
    swapped: list = []

    def racing(what="."):
        named = os.readlink(f"/proc/self/fd/{what}") if isinstance(what, int) else str(what)
        if named == str(root / "dir") and not swapped:
            os.rename(root / "dir", root / "dir.moved")
            os.symlink(str(host), root / "dir")
            swapped.append(True)
        return real(what)

    monkeypatch.setattr(os, listing, racing)
    return root, swapped


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


class DaemonHandle:
    def __init__(self, root: str) -> None:
        self.root = root
        self.data_root = os.path.join(root, "data")
        self.exec_root = os.path.join(root, "exec")  # not the host's shared /run/pyengine
        self.socket = os.path.join(root, "pyengine.sock")
        self.host = f"unix://{self.socket}"
        self.log_path = os.path.join(root, "daemon.log")
        # The daemon's configuration file (empty unless a test writes one before start):
        # never the host's /etc/pyengine/daemon.json
        self.config_file = os.path.join(root, "daemon.json")
        self.process: subprocess.Popen | None = None
        self.extra_env: dict[str, str] = {}
        self.extra_args: list[str] = []

    def start(self) -> None:
        if not os.path.exists(self.config_file):
            os.makedirs(self.root, exist_ok=True)
            with open(self.config_file, "w") as f:
                f.write("{}\n")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.daemon", "--data-root", self.data_root,
             "--exec-root", self.exec_root, "-H", self.host, "--config-file", self.config_file, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.extra_env},
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pyengined exited early:\n{self.log()}")
            if os.path.exists(self.socket):
                import httpx

                try:
                    self.api("GET", "/_ping")
                    return
                except (OSError, httpx.TransportError):
                    pass  # a stale socket from a killed daemon, or not listening yet
            time.sleep(0.05)
        raise RuntimeError(f"pyengined did not come up:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def spawner_pid(self) -> int | None:
        """The live-restore spawner of this data root, if it runs."""
        try:
            with open(os.path.join(self.data_root, "spawner.sock.pid")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def discard(self) -> list[str]:
        """Stop the daemon and remove its root; returns the mounts it had left behind (they
        are unmounted first, so nothing stays on the host even when a test fails). Containers
        left running (live restore) are stopped by one more daemon run without it."""
        self.stop()
        if self.spawner_pid() is not None:
            args = self.extra_args
            self.extra_args = [*args, "--no-live-restore"]
            try:
                self.start()
                self.stop()
            finally:
                self.extra_args = args
        leftovers = _mounts_under(self.root)
        for mount in reversed(leftovers):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        return leftovers

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return ""

    def api(self, method: str, path: str, **kwargs):
        import httpx

        transport = httpx.HTTPTransport(uds=self.socket)
        with httpx.Client(transport=transport, base_url="http://docker", timeout=60) as client:
            return client.request(method, path, **kwargs)

    def env(self) -> dict:
        return {**os.environ, "DOCKER_HOST": self.host, "PYENGINE_HOST": self.host}


@contextlib.contextmanager
def private_daemon(prefix: str = "pe-test-", bootstrap: bool = True, prepare=None):
    """A pyengined on its own temp root and socket (busybox bootstrapped), discarded after."""
    handle = DaemonHandle(tempfile.mkdtemp(prefix=prefix))
    try:
        if prepare is not None:
            prepare(handle)
        handle.start()
        if bootstrap:
            response = handle.api("POST", "/images/bootstrap", params={"name": "busybox", "tag": "latest"})
            assert response.status_code == 201, response.text
        yield handle
    finally:
        handle.discard()


@pytest.fixture(scope="session")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with private_daemon() as handle:
        yield handle
        handle.stop()
        leftovers = _mounts_under(handle.root)
    assert not leftovers, f"mounts left behind by the daemon: {leftovers}"


@pytest.fixture
def dclient(daemon):
    """docker-py's low-level APIClient against the private daemon."""
    import docker

    client = docker.APIClient(base_url=daemon.host, version="1.41", timeout=60)
    created: list[str] = []
    client._pe_created = created
    yield client
    for container in client.containers(all=True):
        try:
            client.remove_container(container["Id"], force=True)
        except docker.errors.APIError:
            pass
    client.close()
