"""docker update / diff / container prune / ps name filters / stats, as docker-py and the
docker CLI use them, against a private pyengined (issue 9)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import docker
import pytest

from tests.conftest import needs_root, wait_for

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance]


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """Read a cgroup v1 controller file of the cgroup holding pid."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                with open(os.path.join(f"/sys/fs/cgroup/{controllers}{path}", name)) as g:
                    return g.read().strip()
    raise AssertionError(f"{controller} is not a v1 controller here")


def test_update_applies_to_the_running_cgroups_and_persists(dclient, daemon):
    c = dclient.create_container("busybox", ["sleep", "1000"],
                                 host_config=dclient.create_host_config(mem_limit=400 << 20))
    dclient.start(c)
    pid = dclient.inspect_container(c)["State"]["Pid"]
    result = dclient.update_container(c, mem_limit=300 << 20, cpu_shares=512, cpu_quota=30000, cpu_period=60000,
                                      cpuset_cpus="0", restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    assert result == {"Warnings": []}
    host = dclient.inspect_container(c)["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["CpuShares"], host["CpuQuota"], host["CpusetCpus"]) == \
        (300 << 20, 800 << 20, 512, 30000, "0")
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    if os.path.exists("/sys/fs/cgroup/memory"):  # v1 here; v2 is covered by the unit tests' writers
        assert int(cgroup_file(pid, "memory", "memory.limit_in_bytes")) == 300 << 20
        assert cgroup_file(pid, "cpu", "cpu.shares") == "512"
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "30000"
        assert cgroup_file(pid, "cpuset", "cpuset.cpus") == "0"
    with open(os.path.join(daemon.data_root, "containers", c["Id"], "config.v2.json")) as f:
        assert json.load(f)["host_config"]["resources"]["memory"] == 300 << 20
    with pytest.raises(docker.errors.APIError) as info:
        dclient.update_container(c, mem_limit=900 << 20)  # above MemorySwap
    assert info.value.status_code == 400 and "update the memoryswap at the same time" in str(info.value)
    assert dclient.inspect_container(c)["HostConfig"]["Memory"] == 300 << 20  # nothing changed
    # a kernel memory limit: recorded (never applied), with dockerd's deprecation warning
    assert dclient.update_container(c, kernel_memory="10m") == {"Warnings": [
        "Specifying a kernel memory limit is deprecated and will be removed in a future release."]}
    assert dclient.inspect_container(c)["HostConfig"]["KernelMemory"] == 10 << 20
    with pytest.raises(docker.errors.APIError, match="Minimum kernel memory limit allowed is 6MB"):
        dclient.update_container(c, kernel_memory=1024)


def test_diff_reports_added_changed_and_deleted_paths(dclient):
    c = dclient.create_container("busybox", ["sh", "-c", "touch /test; rm /bin/ls; echo x >> /etc/passwd"])
    dclient.start(c)
    assert dclient.wait(c)["StatusCode"] == 0
    assert dclient.diff(c) == [
        {"Path": "/bin", "Kind": 0}, {"Path": "/bin/ls", "Kind": 2}, {"Path": "/etc", "Kind": 0},
        {"Path": "/etc/passwd", "Kind": 0}, {"Path": "/test", "Kind": 1},
    ]
    untouched = dclient.create_container("busybox", ["true"])
    assert dclient.diff(untouched) is None  # dockerd's null


@pytest.mark.parametrize("policy,message", [
    ({"Name": "always", "MaximumRetryCount": 3}, "maximum retry count cannot be used with restart policy 'always'"),
    ({"Name": "sometimes"}, "invalid restart policy 'sometimes'"),
])
def test_create_refuses_bad_restart_policies(dclient, policy, message):
    with pytest.raises(docker.errors.APIError) as info:
        dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(restart_policy=policy))
    assert info.value.status_code == 400 and message in str(info.value)


def test_a_restarting_container_is_not_removed_without_force(dclient):
    c = dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(
        restart_policy={"Name": "always"}, network_mode="none"))
    dclient.start(c)
    dclient.wait(c)  # right after an exit: between the exit and its restart
    with pytest.raises(docker.errors.APIError) as info:
        dclient.remove_container(c)
    assert info.value.status_code == 409 and "Stop the container before" in str(info.value)
    dclient.remove_container(c, force=True)
    assert not dclient.containers(all=True, filters={"id": c["Id"]})


def test_prune_filters_and_space(dclient):
    keep = dclient.create_container("busybox", ["true"], labels={"tier": "keep"})
    old = dclient.create_container("busybox", ["sh", "-c", "echo hello > /data.txt"], labels={"tier": "old"})
    running = dclient.create_container("busybox", ["sleep", "1000"], labels={"tier": "old"})
    dclient.start(old)
    dclient.start(running)
    dclient.wait(old)
    assert dclient.prune_containers(filters={"until": "2000-01-01T00:00:00Z"})["ContainersDeleted"] is None
    result = dclient.prune_containers(filters={"label": "tier=old"})
    assert result["ContainersDeleted"] == [old["Id"]] and result["SpaceReclaimed"] > 0
    assert dclient.prune_containers(filters={"label!": "tier=keep"})["ContainersDeleted"] is None
    assert dclient.prune_containers(filters={"label!": "tier=old"})["ContainersDeleted"] == [keep["Id"]]
    with pytest.raises(docker.errors.APIError) as info:
        dclient.prune_containers(filters={"status": "exited"})
    assert info.value.status_code == 400
    assert [c["Id"] for c in dclient.containers(all=True)] == [running["Id"]]


def test_stats_one_shot_no_stream_and_networks(dclient):
    c = dclient.create_container("busybox", ["sleep", "1000"])
    dclient.start(c)
    one = dclient.stats(c, stream=False, one_shot=True)
    assert one["preread"] == "0001-01-01T00:00:00Z"
    assert one["precpu_stats"] == {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                                   "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    assert set(one["networks"]) == {"eth0"} and set(one["networks"]["eth0"]) == {
        "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}
    two = dclient.stats(c, stream=False)
    assert two["preread"] != "0001-01-01T00:00:00Z" and two["precpu_stats"]["system_cpu_usage"] > 0
    isolated = dclient.create_container("busybox", ["sleep", "1000"],
                                        host_config=dclient.create_host_config(network_mode="none"))
    dclient.start(isolated)
    assert "networks" not in dclient.stats(isolated, stream=False, one_shot=True)  # only lo


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_cli_ps_name_filter_update_and_diff(dclient, daemon):
    for name in ("web", "web2"):
        dclient.start(dclient.create_container("busybox", ["sleep", "1000"], name=name))

    def docker_cli(*args):
        return subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=60)

    assert docker_cli("ps", "--filter", "name=^/web$", "--format", "{{.Names}}").stdout.split() == ["web"]
    assert sorted(docker_cli("ps", "--filter", "name=web", "--format", "{{.Names}}").stdout.split()) == ["web", "web2"]
    updated = docker_cli("update", "--pids-limit", "50", "--restart", "unless-stopped", "web")
    assert updated.returncode == 0, updated.stderr
    assert docker_cli("inspect", "-f", "{{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", "web").stdout.split() \
        == ["50", "unless-stopped"]
    dclient.exec_start(dclient.exec_create("web", ["mkdir", "/made"]))
    assert docker_cli("diff", "web").stdout.splitlines() == ["A /made"]


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_cli_system_prune_exits_zero(dclient, daemon):
    stopped = dclient.create_container("busybox", ["true"])
    running = dclient.create_container("busybox", ["sleep", "1000"])
    dclient.start(running)
    result = subprocess.run([DOCKER, "system", "prune", "-f"], env=daemon.env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert stopped["Id"] in result.stdout
    assert [c["Id"] for c in dclient.containers(all=True)] == [running["Id"]]


def test_an_exec_that_cannot_start_records_126(dclient):
    c = dclient.create_container("busybox", ["sleep", "1000"])
    dclient.start(c)
    exec_id = dclient.exec_create(c, ["not-there"])["Id"]
    try:
        said = dclient.exec_start(exec_id).decode()
    except docker.errors.APIError as exc:
        said = str(exc)
    assert "executable file not found" in said
    assert dclient.exec_inspect(exec_id)["ExitCode"] == 126  # as dockerd (docker-py's exec_run checks it)
    ghost = dclient.exec_create(c, ["true"], user="ghost")["Id"]
    try:
        said = dclient.exec_start(ghost).decode()
    except docker.errors.APIError as exc:
        said = str(exc)
    assert "unable to find user ghost: no matching entries in passwd file" in said
    assert dclient.exec_inspect(ghost)["ExitCode"] == 126  # the docker CLI exits with it (was 0)



def test_an_update_the_kernel_refuses_changes_nothing(dclient):
    """A memory limit below what the container holds in tmpfs (pages the kernel can neither
    reclaim nor, with memsw limited too, swap out) is refused by the kernel (EBUSY): the update
    fails as a whole and the cpu shares written before it are put back."""
    c = dclient.create_container("busybox", ["sh", "-c", "dd if=/dev/zero of=/dev/shm/f bs=1M count=24 && "
                                             "touch /dev/shm/done && sleep 1000"],
                                 host_config=dclient.create_host_config(cpu_shares=256))
    dclient.start(c)

    def filled() -> bool:
        probe = dclient.exec_create(c, ["test", "-e", "/dev/shm/done"])["Id"]
        dclient.exec_start(probe)
        return dclient.exec_inspect(probe)["ExitCode"] == 0

    wait_for(filled, what="24 MiB written to the container's /dev/shm")
    with pytest.raises(docker.errors.APIError) as info:
        dclient.update_container(c, cpuset_cpus="999")  # no such CPU: refused before the kernel sees it
    assert info.value.status_code == 400 and "Requested CPUs are not available - requested 999" in str(info.value)
    with pytest.raises(docker.errors.APIError) as info:
        dclient.update_container(c, cpu_shares=512, mem_limit="8m", memswap_limit="16m")
    assert info.value.status_code == 500 and f"Cannot update container {c['Id']}" in str(info.value)
    host = dclient.inspect_container(c)["HostConfig"]
    assert (host["CpuShares"], host["Memory"], host["MemorySwap"]) == (256, 0, 0)
    pid = dclient.inspect_container(c)["State"]["Pid"]
    if os.path.exists("/sys/fs/cgroup/cpu"):
        assert cgroup_file(pid, "cpu", "cpu.shares") == "256"


def test_bind_propagation_is_shown_and_checked_as_dockerd(dclient, tmp_path):
    c = dclient.create_container("busybox", ["true"], volumes=["/mnt"], host_config=dclient.create_host_config(
        binds={str(tmp_path): {"bind": "/mnt", "mode": "rw,rslave"}}))
    mount = [m for m in dclient.inspect_container(c)["Mounts"] if m["Destination"] == "/mnt"][0]
    assert (mount["Source"], mount["RW"], mount["Propagation"]) == (str(tmp_path), True, "rslave")
    from engine.containers.propagation import mount_of

    with open("/proc/self/mountinfo") as f:
        _, fields = mount_of(os.path.realpath(tmp_path), f.read())
    if any(f.startswith(("shared:", "master:")) for f in fields):
        pytest.skip(f"{tmp_path} propagates on this host: nothing to refuse")
    with pytest.raises(docker.errors.APIError) as info:
        dclient.start(c)
    assert info.value.status_code == 500
    assert f"path {tmp_path} is mounted on" in str(info.value) and "not a shared or slave mount" in str(info.value)
