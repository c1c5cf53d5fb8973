"""`--init` (HostConfig.Init): pe-init is the container's PID 1, runs the command as its child,
forwards signals to it, reaps orphans and exits with the command's status."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import needs_root, wait_for

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]


def docker_cli(daemon, *args):
    return subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=60)


def test_init_is_pid_1_and_passes_the_exit_status_through(daemon):
    ps = docker_cli(daemon, "run", "--rm", "--init", "--read-only", "busybox", "ps", "-o", "pid,args")
    assert ps.stdout.splitlines()[1:] == ["    1 /sbin/docker-init -- ps -o pid,args", "    2 ps -o pid,args"]
    assert docker_cli(daemon, "run", "--rm", "--init", "busybox", "sh", "-c", "exit 5").returncode == 5
    # pe-init is started with every signal blocked (so none sent early is lost); its command
    # starts with none blocked.
    status = docker_cli(daemon, "run", "--rm", "--init", "busybox", "cat", "/proc/self/status").stdout
    assert "SigBlk:\t0000000000000000" in status.splitlines()
    missing = docker_cli(daemon, "run", "--rm", "--init", "busybox", "no-such-command")
    assert missing.returncode == 127 and "no-such-command" in missing.stderr


def test_init_forwards_stop_signal_to_the_command(daemon, dclient):
    # Without an init, `sleep` as PID 1 ignores SIGTERM and is killed after the timeout (137).
    c = dclient.create_container("busybox", ["sleep", "1000"], host_config=dclient.create_host_config(init=True))
    try:
        dclient.start(c)
        # Stop once pe-init runs the command (two processes): a SIGTERM that reaches PID 1
        # before it has blocked its signals is dropped by the kernel (PID 1 of a namespace
        # with SIGTERM's default action), with docker-init (tini) as with pe-init.
        wait_for(lambda: len(dclient.top(c)["Processes"]) == 2, what="pe-init's child")
        dclient.stop(c, timeout=60)
        state = dclient.inspect_container(c)["State"]
        assert state["ExitCode"] == 128 + 15
        assert dclient.inspect_container(c)["HostConfig"]["Init"] is True
    finally:
        dclient.remove_container(c, force=True)


def test_init_reaps_orphans(daemon):
    # The inner shell exits at once, leaving `sleep 0` to PID 1 of the container.
    script = ('sh -c "sleep 0 & exit 0"; for i in $(seq 100); do '
              'ps -o stat,args | grep -q "^Z" || { echo reaped; exit 0; }; sleep 0.1; done; ps -o stat,args')
    result = docker_cli(daemon, "run", "--rm", "--init", "busybox", "sh", "-c", script)
    assert result.stdout == "reaped\n", result.stdout + result.stderr
