"""HostConfig's kernel knobs (--sysctl, --oom-score-adj, --cgroup-parent, --cgroupns,
--memory-swappiness, --oom-kill-disable, --device-*-bps/iops, --blkio-weight-device) through
the docker CLI and docker-py against a private pyengined: seen inside the container and in the
cgroup files; bad values refused with dockerd's messages; nothing left after a failed start."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import uuid

import docker
import pytest

from engine.runtime import cgroups
from tests.conftest import _mounts_under, needs_root, private_daemon

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]
V1 = cgroups.detect_mode() == "v1"
PIDS_MAX = "/sys/fs/cgroup/pids/pids.max" if V1 else "/sys/fs/cgroup/pids.max"


def docker_cli(daemon, *args):
    return subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=60)


def cgroup_dirs(cid: str) -> list[str]:
    return [p for p in glob.glob("/sys/fs/cgroup/**/" + cid, recursive=True) if os.path.isdir(p)]


def test_sysctls_oom_score_and_cgroupns_are_seen_in_the_container(daemon, dclient):
    result = docker_cli(daemon, "run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.msgmax=12345",
                        "--oom-score-adj", "300", "--cgroupns", "host", "--pids-limit", "33", "busybox", "sh", "-c",
                        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax /proc/self/oom_score_adj;"
                        " grep -c \"$HOSTNAME\" /proc/self/cgroup; echo 1 > /proc/sys/kernel/msgmax || echo ro;"
                        f" cat {PIDS_MAX}")
    lines = result.stdout.splitlines()
    assert lines[:3] == ["1", "12345", "300"], result.stderr
    assert int(lines[3]) > 0  # the host's cgroup namespace: full paths, with the container's id
    assert lines[4] == "ro"  # /proc/sys made read-only after the writes
    assert lines[5] == "33"  # its own cgroup at /sys/fs/cgroup, not the host's tree
    # A private cgroup namespace (the default) shows the container's cgroup as its root; the
    # daemon's own score never leaks in (0 unless asked).
    result = docker_cli(daemon, "run", "--rm", "busybox", "sh", "-c",
                        "cat /proc/self/oom_score_adj; grep -c \"$HOSTNAME\" /proc/self/cgroup")
    assert result.stdout.split() == ["0", "0"], result.stderr


def test_an_oom_score_adj_the_kernel_refuses_fails_the_start_with_the_reason(daemon, dclient):
    with open("/proc/self/status") as f:
        effective = int(next(line for line in f if line.startswith("CapEff:")).split()[1], 16)
    if effective & (1 << 24):  # CAP_SYS_RESOURCE: lowering the score is allowed here
        pytest.skip("this host may lower oom_score_adj")
    cid = dclient.create_container("busybox", ["true"], host_config={"OomScoreAdj": -500})["Id"]
    try:
        with pytest.raises(docker.errors.APIError) as info:
            dclient.start(cid)
        assert "oom score adj -500 (write /proc/self/oom_score_adj): permission denied" in info.value.explanation
        assert cgroup_dirs(cid) == [] and not [m for m in _mounts_under(daemon.root) if cid in m]
    finally:
        dclient.remove_container(cid, force=True)


def test_exec_gets_the_containers_oom_score_adj(daemon, dclient):
    cid = dclient.create_container("busybox", ["sleep", "60"], host_config={"OomScoreAdj": 200})["Id"]
    try:
        dclient.start(cid)
        exec_id = dclient.exec_create(cid, ["cat", "/proc/self/oom_score_adj"])["Id"]
        assert dclient.exec_start(exec_id).decode().strip() == "200"
    finally:
        dclient.remove_container(cid, force=True)


@pytest.mark.parametrize("host_config, message", [
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"CgroupnsMode": "shared"}, "invalid cgroup namespace mode: shared"),
    ({"Sysctls": {"kernel.panic": "1"}}, 'sysctl "kernel.panic" is not in a separate kernel namespace'),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"},
     'sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace'),
    ({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"},
     'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"CgroupParent": "a/../b"}, "invalid cgroup parent"),
])
def test_bad_values_are_refused_at_create(dclient, host_config, message):
    with pytest.raises(docker.errors.APIError) as info:
        dclient.create_container("busybox", ["true"], host_config=host_config)
    assert info.value.status_code == 400 and message in info.value.explanation


def test_a_missing_sysctl_fails_the_start_and_leaves_nothing(daemon, dclient):
    parent = f"pe-test-{uuid.uuid4().hex[:8]}"
    cid = dclient.create_container("busybox", ["true"], host_config={
        "Sysctls": {"net.ipv4.pe_no_such_key": "1"}, "CgroupParent": parent})["Id"]
    try:
        with pytest.raises(docker.errors.APIError) as info:
            dclient.start(cid)
        assert 'sysctl "net.ipv4.pe_no_such_key" (open /proc/sys/net/ipv4/pe_no_such_key): ' \
               "no such file or directory" in info.value.explanation
        assert dclient.inspect_container(cid)["State"]["Status"] == "created"
        assert not [m for m in _mounts_under(daemon.root) if cid in m]
        assert cgroup_dirs(cid) == []
    finally:
        dclient.remove_container(cid, force=True)
        for d in glob.glob(f"/sys/fs/cgroup/**/{parent}", recursive=True):
            os.rmdir(d)


def test_cpu_realtime_settings_are_kept_and_written_as_dockerd(daemon, dclient):
    """--cpu-rt-period/--cpu-rt-runtime (they were dropped without a word): kept in HostConfig
    and written to the container's cpu cgroup at start. A runtime the parent cgroup has no
    real-time budget for (this daemon's, like dockerd's, has none unless given one) is
    refused by the kernel: the start fails with the reason and leaves nothing. Cgroup v2
    has no real-time groups: a 400 at create, as dockerd's."""
    realtime = {"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 500}
    if not cgroups.support().cpu_realtime:
        with pytest.raises(docker.errors.APIError) as info:
            dclient.create_container("busybox", ["true"], host_config=realtime)
        assert (info.value.status_code, info.value.explanation) == (
            400, "Your kernel does not support CPU real-time scheduler")
        return
    with pytest.raises(docker.errors.APIError) as info:
        dclient.create_container("busybox", ["true"], host_config={"CpuRealtimePeriod": 1000,
                                                                   "CpuRealtimeRuntime": 2000})
    assert (info.value.status_code, info.value.explanation) == (
        400, "cpu real-time runtime cannot be higher than cpu real-time period")
    # docker-py spells them "CPURealtime…": Go matches JSON keys to fields case-insensitively
    refused = dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(
        cpu_rt_period=1000, cpu_rt_runtime=500))["Id"]
    period_only = dclient.create_container("busybox", ["sleep", "60"], host_config={"CpuRealtimePeriod": 20000})["Id"]
    try:
        host = dclient.inspect_container(refused)["HostConfig"]
        assert (host["CpuRealtimePeriod"], host["CpuRealtimeRuntime"]) == (1000, 500)
        with pytest.raises(docker.errors.APIError) as info:
            dclient.start(refused)
        assert "cpu.rt_runtime_us" in info.value.explanation and "invalid argument" in info.value.explanation.lower()
        assert cgroup_dirs(refused) == [] and not [m for m in _mounts_under(daemon.root) if refused in m]
        dclient.start(period_only)
        [cpu] = [d for d in cgroup_dirs(period_only) if os.path.exists(os.path.join(d, "cpu.rt_period_us"))]
        with open(os.path.join(cpu, "cpu.rt_period_us")) as f:
            assert f.read().strip() == "20000"
        result = docker_cli(daemon, "update", "--cpu-rt-runtime", "30000", period_only)
        assert result.returncode != 0 and (f"Cannot update container {period_only}: "
                                           "cpu real-time runtime cannot be higher than cpu real-time period") in result.stderr
    finally:
        dclient.remove_container(refused, force=True)
        dclient.remove_container(period_only, force=True)


def test_cgroup_parent_holds_the_container_everywhere(daemon, dclient):
    parent = f"/pe-test-{uuid.uuid4().hex[:8]}"
    cid = dclient.create_container("busybox", ["sleep", "60"], host_config={"CgroupParent": parent})["Id"]
    try:
        assert dclient.inspect_container(cid)["HostConfig"]["CgroupParent"] == parent
        dclient.start(cid)
        dirs = cgroup_dirs(cid)
        assert dirs and all(f"{parent}/{cid}" in d for d in dirs)
        pid = dclient.inspect_container(cid)["State"]["Pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            assert f"{parent}/{cid}" in f.read()
        assert [p[1] for p in dclient.top(cid)["Processes"]] == [str(pid)] or dclient.top(cid)["Processes"]
        dclient.update_container(cid, mem_limit="64m", memswap_limit="-1")
        if V1:
            with open(f"/sys/fs/cgroup/memory{parent}/{cid}/memory.limit_in_bytes") as f:
                assert int(f.read()) == 64 << 20
        dclient.pause(cid)
        assert dclient.inspect_container(cid)["State"]["Paused"]
        dclient.unpause(cid)
        stats = dclient.stats(cid, stream=False)
        assert stats["memory_stats"].get("limit") == 64 << 20
    finally:
        dclient.remove_container(cid, force=True)
        assert cgroup_dirs(cid) == []
        for d in glob.glob(f"/sys/fs/cgroup/*{parent}"):
            os.rmdir(d)


@pytest.mark.skipif(not V1, reason="the memory/blkio v1 files (v2 paths: tests/unit)")
def test_memory_and_blkio_knobs_land_in_the_cgroup_files(daemon, dclient):
    dev = os.stat("/dev/vda") if os.path.exists("/dev/vda") else None
    result = docker_cli(daemon, "create", "--memory", "64m", "--memory-swappiness", "7", "--oom-kill-disable",
                        *(["--device-read-bps", "/dev/vda:1mb", "--device-write-iops", "/dev/vda:77"] if dev else []),
                        "busybox", "sleep", "60")
    cid = result.stdout.strip()
    assert cid, result.stderr
    try:
        dclient.start(cid)
        memory = glob.glob(f"/sys/fs/cgroup/memory/**/{cid}", recursive=True)[0]
        with open(f"{memory}/memory.swappiness") as f:
            assert f.read().strip() == "7"
        with open(f"{memory}/memory.oom_control") as f:
            assert "oom_kill_disable 1" in f.read()
        host = dclient.inspect_container(cid)["HostConfig"]
        assert (host["MemorySwappiness"], host["OomKillDisable"]) == (7, True)
        if dev:
            blk = glob.glob(f"/sys/fs/cgroup/blkio/**/{cid}", recursive=True)[0]
            majmin = f"{os.major(dev.st_rdev)}:{os.minor(dev.st_rdev)}"
            with open(f"{blk}/blkio.throttle.read_bps_device") as f:
                assert f.read().split() == [majmin, str(1 << 20)]
            with open(f"{blk}/blkio.throttle.write_iops_device") as f:
                assert f.read().split() == [majmin, "77"]
            assert host["BlkioDeviceReadBps"] == [{"Path": "/dev/vda", "Rate": 1 << 20}]
    finally:
        dclient.remove_container(cid, force=True)


def test_oom_kill_disable_without_a_memory_limit_warns(dclient):
    response = dclient.create_container("busybox", ["true"], host_config={"OomKillDisable": True})
    try:
        if V1:
            assert response["Warnings"] == [cgroups.OOM_KILL_DISABLE_NO_LIMIT_WARNING]
        else:
            assert cgroups.OOM_KILL_DISABLE_UNSUPPORTED_WARNING in response["Warnings"]
    finally:
        dclient.remove_container(response["Id"], force=True)


def test_a_crash_leaves_no_cgroup_under_a_custom_parent():
    """A restarted daemon re-adopts a running container with its cgroup under its own
    --cgroup-parent (pause works); when the container exited while no daemon ran, the next
    daemon removes that cgroup too (not only the ones under the daemon's parent)."""
    parent = f"/pe-test-{uuid.uuid4().hex[:8]}"
    with private_daemon() as handle:
        client = docker.APIClient(base_url=handle.host, version="1.41", timeout=60)
        cid = client.create_container("busybox", ["sleep", "600"], host_config={"CgroupParent": parent})["Id"]
        try:
            client.start(cid)
            pid = client.inspect_container(cid)["State"]["Pid"]
            handle.stop(signal.SIGKILL)
            handle.start()
            client.pause(cid)
            frozen = f"/sys/fs/cgroup/freezer{parent}/{cid}/freezer.state" if V1 else f"/sys/fs/cgroup{parent}/{cid}/cgroup.freeze"
            with open(frozen) as f:
                assert f.read().strip() in ("FROZEN", "1")
            client.unpause(cid)
            handle.stop(signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
            assert cgroup_dirs(cid)  # left behind by the crash
            handle.start()
            assert cgroup_dirs(cid) == []
            assert client.inspect_container(cid)["State"]["Status"] == "exited"
        finally:
            client.remove_container(cid, force=True)
            for d in glob.glob(f"/sys/fs/cgroup/*{parent}"):
                os.rmdir(d)
