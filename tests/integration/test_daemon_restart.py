"""State survives a daemon restart. With live restore (the default) running containers are
re-adopted; with --no-live-restore those a dead daemon left running are stopped, cleaned up
and recorded as exited; restart policies apply at daemon start."""

from __future__ import annotations

import os
import signal
import subprocess

import docker
import pytest

from tests.conftest import _mounts_under, private_daemon, needs_root

pytestmark = needs_root


@pytest.fixture
def own_daemon():
    with private_daemon("pe-restart-", prepare=lambda h: h.extra_args.append("--no-live-restore")) as handle:
        yield handle

def client_for(handle):
    return docker.APIClient(base_url=handle.host, version="1.41", timeout=60)


def test_state_survives_restart_and_sigkill(own_daemon):
    client = client_for(own_daemon)
    done = client.create_container("busybox", ["sh", "-c", "exit 3"], name="pe-done")
    client.start(done)
    client.wait(done)
    running = client.create_container("busybox", ["sleep", "1000"], name="pe-running")
    client.start(running)
    always = client.create_container("busybox", ["sleep", "1000"], name="pe-always",
                                     host_config=client.create_host_config(restart_policy={"Name": "always"}))
    client.start(always)
    pid = client.inspect_container(running)["State"]["Pid"]

    own_daemon.stop(signal.SIGKILL)  # a crash: no cleanup ran
    own_daemon.start()
    client = client_for(own_daemon)
    assert client.inspect_container("pe-done")["State"]["ExitCode"] == 3
    state = client.inspect_container("pe-running")["State"]
    assert state["Status"] == "exited" and state["Error"]
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert client.inspect_container("pe-always")["State"]["Status"] == "running"
    # the rootfs of the dead container is not left mounted
    assert not [m for m in _mounts_under(own_daemon.root) if running["Id"] in m]

    own_daemon.stop()  # graceful: containers are stopped, mounts undone
    assert _mounts_under(own_daemon.root) == []
    own_daemon.start()
    client = client_for(own_daemon)
    assert client.inspect_container("pe-always")["State"]["Status"] == "running"
    for name in ("pe-done", "pe-running", "pe-always"):
        client.remove_container(name, force=True)


def test_a_removal_cut_short_is_finished_at_start(own_daemon):
    """rm answers once the record is gone and moved into <data_root>/tmp; a daemon killed
    before its background cleanup ran leaves that directory (possibly with a mount) and the
    cgroups: the next start removes them, and nothing else."""
    from engine.daemon import parse_args
    from engine.runtime import cgroups

    client = client_for(own_daemon)
    kept = client.create_container("busybox", ["true"], name="pe-kept")
    gone_id = "f" * 64
    trash = os.path.join(own_daemon.data_root, "tmp", f"removed-{gone_id}")
    os.makedirs(os.path.join(trash, "merged"))
    subprocess.run(["mount", "-t", "tmpfs", "none", os.path.join(trash, "merged")], check=True)
    parent = parse_args(["--data-root", own_daemon.data_root]).cgroup_parent
    leftover = cgroups.for_container(parent, gone_id)
    leftover.create(cgroups.Resources())
    try:
        own_daemon.stop(signal.SIGKILL)
        own_daemon.start()
        assert not os.path.exists(trash)
        assert not [m for m in _mounts_under(own_daemon.root) if gone_id in m]
        assert not leftover.exists()
        assert client_for(own_daemon).inspect_container("pe-kept")["Id"] == kept["Id"]
    finally:
        subprocess.run(["umount", "-l", os.path.join(trash, "merged")], capture_output=True)
        leftover.destroy()
