"""--device and --device-cgroup-rule (HostConfig.Devices / DeviceCgroupRules) through the docker
CLI and docker-py, against a private pyengined."""

from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess

import docker
import pytest

from tests.conftest import _mounts_under, needs_root

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]

# mknod is allowed ("c *:* m"); opening the node is what the device cgroup decides (/dev/kmsg
# also wants CAP_SYSLOG when dmesg is restricted, hence --cap-add SYSLOG on both runs).
OPEN_KMSG = "mknod /tmp/k c 1 11 && if head -c0 /tmp/k; then echo opened; else echo refused; fi"


def docker_cli(daemon, *args):
    return subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=60)


def test_device_is_mapped_with_its_numbers_and_allowed(daemon):
    result = docker_cli(daemon, "run", "--rm", "--device", "/dev/full:/dev/xfull:rw", "busybox", "sh", "-c",
                        "stat -c '%t:%T %F' /dev/xfull; echo x > /dev/xfull")
    assert result.stdout.splitlines()[0] == "1:7 character special file"
    assert "No space left on device" in result.stderr  # the real /dev/full, writable


def test_only_a_device_cgroup_rule_opens_an_unlisted_device(daemon):
    assert docker_cli(daemon, "run", "--rm", "--cap-add", "SYSLOG", "busybox", "sh", "-c", OPEN_KMSG).stdout == "refused\n"
    allowed = docker_cli(daemon, "run", "--rm", "--cap-add", "SYSLOG", "--device-cgroup-rule", "c 1:11 r",
                         "busybox", "sh", "-c", OPEN_KMSG)
    assert allowed.stdout == "opened\n", allowed.stderr


def test_a_missing_host_device_fails_the_start_and_leaves_the_container_created(daemon, dclient):
    result = docker_cli(daemon, "run", "--name", "pe-nodev", "--device", "/dev/pe-no-such-device", "busybox", "true")
    try:
        assert result.returncode != 0
        assert ('error gathering device information while adding custom device "/dev/pe-no-such-device": '
                "no such file or directory") in result.stderr
        state = dclient.inspect_container("pe-nodev")["State"]
        assert (state["Status"], state["Running"]) == ("created", False)
        cid = dclient.inspect_container("pe-nodev")["Id"]
        assert not [m for m in _mounts_under(daemon.root) if cid in m]
        assert not glob.glob(f"/sys/fs/cgroup/*/*/{cid}") + glob.glob(f"/sys/fs/cgroup/*/*/*/{cid}")
    finally:
        dclient.remove_container("pe-nodev", force=True)


@pytest.mark.parametrize("host_config, message", [
    ({"DeviceCgroupRules": ["c 1:11 x"]}, "invalid device cgroup rule format: 'c 1:11 x'"),
    ({"Devices": [{"PathOnHost": "/dev/full", "PathInContainer": "xfull", "CgroupPermissions": "rw"}]},
     "xfull is not an absolute path"),
    ({"Devices": [{"PathOnHost": "/dev/full", "PathInContainer": "/dev/xfull", "CgroupPermissions": "rwx"}]},
     "invalid device mode: rwx"),
])
def test_bad_device_options_are_refused_at_create(dclient, host_config, message):
    with pytest.raises(docker.errors.APIError) as info:
        dclient.create_container("busybox", ["true"], host_config=host_config)
    assert info.value.status_code == 400 and message in info.value.explanation


def test_a_directory_of_devices_is_mapped_node_by_node(daemon, tmp_path):
    (tmp_path / "sub").mkdir()
    os.mknod(tmp_path / "sub" / "full", 0o640 | stat.S_IFCHR, os.makedev(1, 7))
    (tmp_path / "not-a-device").write_text("x")
    result = docker_cli(daemon, "run", "--rm", "--device", f"{tmp_path}:/dev/mine", "busybox", "sh", "-c",
                        "stat -c '%n %t:%T %a' $(find /dev/mine ! -type d)")
    assert result.stdout == "/dev/mine/sub/full 1:7 640\n", result.stderr
