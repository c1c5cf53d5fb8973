"""A daemon with no swarm and no managed plugins answers as dockerd does in that state: the
swarm routes 503 (docker-py's leave_swarm(force=True) and the CLI read that as "no swarm"),
plugin lists are empty, lookups 404, installs are refused with 501 and a clear message."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from engine.api.plugins import NOT_SUPPORTED
from engine.api.swarm import NOT_A_MANAGER, NOT_IN_A_SWARM
from tests.conftest import needs_root

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance]


@pytest.mark.parametrize("method,path,status,message", [
    ("GET", "/v1.41/swarm", 503, NOT_A_MANAGER),
    ("POST", "/v1.41/swarm/leave?force=1", 503, NOT_IN_A_SWARM),
    ("GET", "/swarm/unlockkey", 503, NOT_A_MANAGER),
    ("GET", "/v1.41/nodes", 503, NOT_A_MANAGER),
    ("GET", "/v1.41/nodes/abc", 503, NOT_A_MANAGER),
    ("POST", "/v1.41/services/create", 503, NOT_A_MANAGER),
    ("GET", "/v1.41/services/web/logs", 503, NOT_A_MANAGER),
    ("GET", "/v1.41/tasks", 503, NOT_A_MANAGER),
    ("DELETE", "/v1.41/secrets/s1", 503, NOT_A_MANAGER),
    ("GET", "/v1.41/configs", 503, NOT_A_MANAGER),
    ("GET", "/v1.41/plugins/vieux/sshfs:latest/json", 404, 'plugin "vieux/sshfs:latest" not found'),
    ("DELETE", "/v1.41/plugins/foo", 404, 'plugin "foo" not found'),
    ("POST", "/v1.41/plugins/foo/enable", 404, 'plugin "foo" not found'),
    ("GET", "/v1.41/plugins/privileges?remote=vieux/sshfs", 501, NOT_SUPPORTED),
    ("POST", "/v1.41/plugins/pull?remote=vieux/sshfs", 501, NOT_SUPPORTED),
    ("POST", "/v1.41/plugins/create?name=foo", 501, NOT_SUPPORTED),
    ("GET", "/v1.41/plugins?filters={\"bogus\":[\"x\"]}", 400, "Invalid filter 'bogus'"),
])
def test_routes_answer_as_dockerd_without_swarm_or_plugins(daemon, method, path, status, message):
    response = daemon.api(method, path)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_docker_py_sees_no_swarm_and_no_plugins(dclient):
    assert dclient.leave_swarm(force=True) is True  # 503 with force: "not in a swarm"
    assert dclient.plugins() == []
    import docker

    with pytest.raises(docker.errors.NotFound):
        dclient.inspect_plugin("foo")
    with pytest.raises(docker.errors.APIError) as info:
        dclient.nodes()
    assert info.value.status_code == 503


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_docker_cli_plugin_and_swarm_commands(daemon, tmp_path):
    def docker(*args):
        return subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=60)

    listed = docker("plugin", "ls")
    assert listed.returncode == 0 and listed.stdout.split() == ["ID", "NAME", "DESCRIPTION", "ENABLED"]
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "payload").write_bytes(os.urandom(1 << 20))  # an upload that outlasts a quick refusal
    (tmp_path / "config.json").write_text("{}")
    for args in (("plugin", "install", "--grant-all-permissions", "vieux/sshfs"),
                 ("plugin", "create", "foo", str(tmp_path))):
        refused = docker(*args)
        assert refused.returncode != 0
        assert refused.stderr.strip() == f"Error response from daemon: {NOT_SUPPORTED}"
    nodes = docker("node", "ls")
    assert nodes.returncode == 1 and nodes.stderr.strip() == f"Error response from daemon: {NOT_A_MANAGER}"
