"""A daemon killed in the middle of a RUN step: once it is back, the build's container, its
mounts and its scratch directory are gone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import _mounts_under, needs_root, private_daemon

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]


def test_daemon_killed_mid_build_leaves_nothing(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN sleep 120\n")
    with private_daemon(prefix="pe-build-kill-") as d:
        env = {**d.env(), "DOCKER_BUILDKIT": "0"}
        build = subprocess.Popen([DOCKER, "build", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            running = []
            while time.monotonic() < deadline and not running:
                running = [c for c in d.api("GET", "/containers/json").json()
                           if "io.pyengine.build.intermediate" in (c.get("Labels") or {})]
                time.sleep(0.1)
            assert running, "the RUN step's container never ran"
            d.stop(signal.SIGKILL)
            build.wait(timeout=60)
        finally:
            if build.poll() is None:
                build.kill()
                build.wait()
        d.start()
        assert d.api("GET", "/containers/json", params={"all": "1"}).json() == []
        assert not _mounts_under(os.path.join(d.data_root, "containers") + "/")
        assert not _mounts_under(os.path.join(d.data_root, "tmp") + "/")
        scratch = os.path.join(d.data_root, "tmp")
        assert not (os.path.isdir(scratch) and [e for e in os.listdir(scratch) if e.startswith("build-")])
