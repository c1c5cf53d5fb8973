"""The real docker CLI's `docker volume …`, `docker run -v vol:/data` and `--mount
type=volume` against a private pyengined."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import _mounts_under, needs_root

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]


@pytest.fixture
def docker(daemon):
    containers: list[str] = []
    volumes: list[str] = []

    def run(*args, timeout=60, check=True):
        result = subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr, daemon.log()[-2000:])
        return result

    run.containers, run.volumes = containers, volumes
    yield run
    for name in containers:
        run("rm", "-f", "-v", name, check=False)
    for name in volumes:
        run("volume", "rm", "-f", name, check=False)


def test_docker_volume_lifecycle(docker, daemon):
    docker.volumes += ["dk-vol"]
    assert docker("volume", "create", "--label", "team=a", "dk-vol").stdout.strip() == "dk-vol"
    listed = docker("volume", "ls").stdout.splitlines()
    assert listed[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert any(line.split() == ["local", "dk-vol"] for line in listed[1:])
    assert docker("volume", "ls", "-q", "--filter", "label=team=a").stdout.split() == ["dk-vol"]
    info = json.loads(docker("volume", "inspect", "dk-vol").stdout)[0]
    assert info["Name"] == "dk-vol" and info["Driver"] == "local" and info["Labels"] == {"team": "a"}
    assert info["Mountpoint"] == os.path.join(daemon.data_root, "volumes", "dk-vol", "_data")
    assert docker("volume", "inspect", "-f", "{{.Scope}}", "dk-vol").stdout.strip() == "local"
    res = docker("volume", "inspect", "dk-nope", check=False)
    assert res.returncode != 0 and "no such volume" in res.stderr.lower()

    docker.containers += ["dk-vuser"]
    docker("run", "--name", "dk-vuser", "-v", "dk-vol:/data", "busybox", "sh", "-c", "echo hello > /data/f")
    out = docker("run", "--rm", "-v", "dk-vol:/data:ro", "busybox", "cat", "/data/f").stdout
    assert out == "hello\n"
    mounts = json.loads(docker("inspect", "dk-vuser").stdout)[0]["Mounts"]
    assert mounts[0]["Type"] == "volume" and mounts[0]["Name"] == "dk-vol" and mounts[0]["Destination"] == "/data"
    res = docker("volume", "rm", "dk-vol", check=False)
    assert res.returncode != 0 and "volume is in use" in res.stderr
    docker("rm", "dk-vuser")
    assert docker("volume", "rm", "dk-vol").stdout.strip() == "dk-vol"
    assert "dk-vol" not in docker("volume", "ls", "-q").stdout.split()


def test_docker_run_creates_volume_and_mount_flag(docker):
    docker.volumes += ["dk-auto", "dk-mnt"]
    out = docker("run", "--rm", "-v", "dk-auto:/etc", "busybox", "head", "-1", "/etc/passwd").stdout
    assert out.startswith("root:")  # created on first use, image content copied up
    assert "dk-auto" in docker("volume", "ls", "-q").stdout.split()
    docker("run", "--rm", "--mount", "type=volume,src=dk-mnt,dst=/data", "busybox", "sh", "-c", "echo m > /data/m")
    out = docker("run", "--rm", "--mount", "type=volume,src=dk-mnt,dst=/data,readonly", "busybox",
                 "sh", "-c", "cat /data/m; touch /data/n", check=False)
    assert out.stdout == "m\n" and out.returncode != 0 and "Read-only" in out.stderr


def test_docker_anonymous_volume_and_rm_v(docker):
    docker.containers += ["dk-anon"]
    docker("run", "--name", "dk-anon", "-v", "/scratch", "busybox", "sh", "-c", "echo a > /scratch/a")
    mounts = json.loads(docker("inspect", "dk-anon").stdout)[0]["Mounts"]
    name = mounts[0]["Name"]
    assert re.fullmatch(r"[0-9a-f]{64}", name) and mounts[0]["Destination"] == "/scratch"
    assert name in docker("volume", "ls", "-q").stdout.split()
    docker("rm", "-v", "dk-anon")
    assert name not in docker("volume", "ls", "-q").stdout.split()
    # --rm removes anonymous volumes too.
    before = set(docker("volume", "ls", "-q").stdout.split())
    docker("run", "--rm", "-v", "/scratch", "busybox", "true")
    assert set(docker("volume", "ls", "-q").stdout.split()) == before


def test_docker_volume_prune(docker, daemon):
    docker("volume", "create", "dk-prunable")
    out = docker("volume", "prune", "-f").stdout
    assert "dk-prunable" in out
    assert "dk-prunable" not in docker("volume", "ls", "-q").stdout.split()
    assert _mounts_under(os.path.join(daemon.data_root, "volumes")) == []
