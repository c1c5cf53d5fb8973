"""Container lifecycle through the Docker API (docker-py's low-level client) against a private
pyengined: real namespaces, cgroups and overlay mounts, as root."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time

import docker
import pytest

from tests.conftest import needs_root, wait_for

pytestmark = needs_root


def run(client, cmd, wait=True, **kwargs):
    """create + start (+ wait): (container id, exit code, stdout+stderr)."""
    host_config = client.create_host_config(**kwargs.pop("host_config", {}))
    container = client.create_container("busybox", cmd, host_config=host_config, **kwargs)
    cid = container["Id"]
    client.start(cid)
    if not wait:
        return cid, None, None
    code = client.wait(cid, timeout=60)["StatusCode"]
    return cid, code, client.logs(cid)


def cgroup_dirs_for(cid: str) -> list[str]:
    found = []
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        for dirpath, dirnames, _ in os.walk(base):
            found += [os.path.join(dirpath, d) for d in dirnames if d == cid]
            if dirpath.count("/") > 6:
                dirnames[:] = []
    return found


def test_echo_and_exit_codes(dclient):
    _, code, out = run(dclient, ["echo", "hello"])
    assert (code, out) == (0, b"hello\n")
    _, code, _ = run(dclient, ["sh", "-c", "exit 3"])
    assert code == 3


def test_isolation(dclient):
    cid, code, out = run(dclient, ["sh", "-c", "echo $$; hostname; ls /proc | grep -c '^[0-9]'; grep CapEff /proc/self/status"])
    pid1, hostname, nprocs, capeff = out.decode().split("\n")[:4]
    assert pid1 == "1"
    assert hostname == cid[:12]
    assert int(nprocs) <= 3  # sh, ls, grep: no host pids
    assert capeff.split()[1] == "00000000a80425fb"


def test_masked_and_readonly_paths(dclient):
    _, code, out = run(dclient, ["sh", "-c", "cat /proc/keys /proc/timer_list | wc -c; touch /sys/x 2>&1; echo 1 > /proc/sys/kernel/shmmax 2>&1; grep ' /sys ' /proc/mounts"])
    text = out.decode()
    assert "0" in text.splitlines()  # masked files read empty
    assert "Read-only file system" in text
    sys_mount = [line for line in text.splitlines() if line.startswith("sysfs /sys ")]
    assert sys_mount and sys_mount[0].split()[3].startswith("ro,")

    # --security-opt systempaths=unconfined: the CLI sends both lists empty, nothing is masked
    probe = ["sh", "-c", "test -c /proc/keys && echo masked; grep -c ' /proc/sys ' /proc/mounts; true"]
    cid, _, out = run(dclient, probe)
    assert out.split() == [b"masked", b"1"]
    assert len(dclient.inspect_container(cid)["HostConfig"]["MaskedPaths"]) > 5  # shown, as dockerd
    dclient.remove_container(cid)
    cid = dclient.create_container("busybox", probe, host_config={"MaskedPaths": [], "ReadonlyPaths": []})["Id"]
    dclient.start(cid)
    assert dclient.wait(cid, timeout=60)["StatusCode"] == 0 and dclient.logs(cid).split() == [b"0"]


def test_defaults_dev_and_etc(dclient):
    cid, code, out = run(dclient, ["sh", "-c", "ls /dev; cat /etc/hostname; grep localhost /etc/hosts | head -1"])
    text = out.decode()
    for node in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx"):
        assert node in text.split(), node
    assert cid[:12] in text
    _, _, out = run(dclient, ["sh", "-c", "grep ' / ' /proc/mounts"])
    assert out.split()[:3] == [b"overlay", b"/", b"overlay"]  # as dockerd's: df and mount name it overlay


def test_user_workdir_env_readonly(dclient):
    _, code, out = run(dclient, ["sh", "-c", "id -u; pwd; echo $FOO; touch /x 2>&1 || true"],
                       user="65534", working_dir="/tmp/work/dir", environment={"FOO": "bar"},
                       host_config={"read_only": True})
    lines = out.decode().splitlines()
    assert lines[:3] == ["65534", "/tmp/work/dir", "bar"]
    assert "Read-only file system" in lines[3]


def test_create_refusals_in_dockerds_words(dclient):
    """--platform the image is not of (404: the CLI then tries a pull of that platform), an
    isolation Linux lacks, a link to a container that does not exist (400, named)."""
    arch = dclient.inspect_image("busybox")["Architecture"]
    other = "arm64" if arch != "arm64" else "amd64"
    with pytest.raises(docker.errors.NotFound) as info:
        dclient.create_container("busybox", "true", platform=f"linux/{other}")
    assert info.value.explanation == ("image with reference busybox was found but does not match the specified "
                                      f"platform: wanted linux/{other}, actual: linux/{arch}")
    dclient.remove_container(dclient.create_container("busybox", "true", platform=f"linux/{arch}")["Id"])
    for host_config, status, message in (
        ({"Isolation": "hyperv"}, 400, "Invalid isolation: \"hyperv\" - linux only supports 'default'"),
        ({"Links": ["pe-no-such:alias"]}, 400, "could not get container for pe-no-such: No such container: pe-no-such"),
        # found by running the same creates against dockerd 20.10
        ({"Memory": 10 << 20, "MemoryReservation": 1 << 30}, 400,
         "Minimum memory limit can not be less than memory reservation limit, see usage"),
        ({"MemoryReservation": 1 << 20}, 400, "Minimum memory reservation allowed is 6MB"),
        ({"CpuPeriod": 500}, 400, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
        ({"CpuQuota": 500}, 400, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        ({"Runtime": "nvidia"}, 400, "Unknown runtime specified nvidia"),
        ({"Binds": ["/tmp:/"]}, 400, "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": "
                                     "invalid specification: destination can't be '/'"),
        ({"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/x", "BindOptions": {"Propagation": "bogus"}}]},
         400, 'invalid mount config for type "bind": invalid propagation mode: bogus'),
        ({"LogConfig": {"Type": "json-file", "Config": {"bogus": "1"}}}, 400,
         "unknown log opt 'bogus' for json-file log driver"),
    ):
        with pytest.raises(docker.errors.APIError) as info:
            dclient.create_container("busybox", "true", host_config=host_config)
        assert (info.value.status_code, info.value.explanation) == (status, message)
    for runtime in ("runc", "pyengine"):  # what inspect shows and what `docker info` lists
        dclient.remove_container(dclient.create_container("busybox", "true", host_config={"Runtime": runtime})["Id"])


def test_home_as_runc_sets_it(dclient):
    """A process whose env has no HOME gets its user's home from /etc/passwd ("/" for a uid
    without an entry), the run's and an exec's alike; an explicit HOME is kept."""
    _, code, out = run(dclient, ["sh", "-c", "echo $HOME"])
    assert (code, out) == (0, b"/root\n")
    _, _, out = run(dclient, ["sh", "-c", "echo $HOME"], user="4242")
    assert out == b"/\n"
    _, _, out = run(dclient, ["sh", "-c", "echo $HOME"], environment={"HOME": "/srv"})
    assert out == b"/srv\n"
    cid, _, _ = run(dclient, ["sleep", "1000"], wait=False)
    exec_id = dclient.exec_create(cid, ["sh", "-c", "echo $HOME"], user="4242")["Id"]
    assert dclient.exec_start(exec_id) == b"/\n"
    dclient.kill(cid)


@pytest.mark.parametrize("network", ["default", "none"])
def test_missing_executable_gives_docker_error_and_cleans_up(dclient, daemon, network):
    """With a network to join the daemon prepares the child before it lets it go; with none
    (nothing to prepare) the spawner lets it go at once and reports the exec: the same errors,
    nothing left behind either way."""
    from tests.conftest import _mounts_under

    before = _mounts_under(daemon.root)
    container = dclient.create_container("busybox", ["no-such-binary"],
                                         host_config=dclient.create_host_config(network_mode=network))
    with pytest.raises(docker.errors.APIError) as info:
        dclient.start(container["Id"])
    assert info.value.status_code == 400
    assert 'exec: "no-such-binary": executable file not found in $PATH' in str(info.value)
    state = dclient.inspect_container(container["Id"])["State"]
    assert state["ExitCode"] == 127 and state["Status"] == "created"
    assert _mounts_under(daemon.root) == before
    assert cgroup_dirs_for(container["Id"]) == []

    container = dclient.create_container("busybox", ["/etc/passwd"],
                                         host_config=dclient.create_host_config(network_mode=network))
    with pytest.raises(docker.errors.APIError) as info:
        dclient.start(container["Id"])
    assert "permission denied" in str(info.value)
    assert dclient.inspect_container(container["Id"])["State"]["ExitCode"] == 126
    assert _mounts_under(daemon.root) == before

    cid, code, out = run(dclient, ["sh", "-c", "echo started; exit 3"], host_config={"network_mode": network})
    assert (code, out) == (3, b"started\n")


def test_stop_timeout_then_sigkill(dclient):
    cid, _, _ = run(dclient, ["sleep", "1000"], wait=False)
    started = time.monotonic()
    dclient.stop(cid, timeout=1)
    assert time.monotonic() - started < 8
    state = dclient.inspect_container(cid)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    # stopping again is "not modified"
    dclient.stop(cid, timeout=1)


def test_stop_without_grace_still_sends_the_stop_signal_first(dclient):
    """As dockerd: -t 0 is the stop signal, then SIGKILL at once (two kill events)."""
    cid, _, _ = run(dclient, ["sleep", "1000"], wait=False, stop_signal="SIGUSR1")
    since = dclient.inspect_container(cid)["Created"]
    dclient.stop(cid, timeout=0)
    events = dclient.events(since=since, until=int(time.time()) + 1, decode=True,
                            filters={"container": cid, "event": "kill"})
    assert [e["Actor"]["Attributes"]["signal"] for e in events] == ["10", "9"]


def test_kill_with_signal_reaches_handler(dclient):
    cid, _, _ = run(dclient, ["sh", "-c", "trap 'echo got-hup; exit 5' HUP; echo ready; while true; do sleep 0.1; done"], wait=False)
    wait_for(lambda: b"ready" in dclient.logs(cid))
    for bad, message in (("BOGUS", "Invalid signal: BOGUS"),
                         ("99", f"Cannot kill container: {cid}: The linux daemon does not support signal 99")):
        with pytest.raises(docker.errors.APIError) as info:
            dclient.kill(cid, signal=bad)
        assert (info.value.status_code, info.value.explanation) == (400, message)
    with pytest.raises(docker.errors.NotFound) as info:
        dclient.kill("pe-no-such-container")
    assert info.value.explanation == "Cannot kill container: pe-no-such-container: No such container: pe-no-such-container"
    with pytest.raises(docker.errors.APIError) as info:  # the signal first, as dockerd
        dclient.kill("pe-no-such-container", signal="BOGUS")
    assert (info.value.status_code, info.value.explanation) == (400, "Invalid signal: BOGUS")
    dclient.kill(cid, signal="HUP")
    assert dclient.wait(cid, timeout=30)["StatusCode"] == 5
    assert b"got-hup" in dclient.logs(cid)


def test_restart_policy_on_failure(dclient):
    cid, _, _ = run(dclient, ["sh", "-c", "echo run; exit 1"], wait=False,
                    host_config={"restart_policy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    wait_for(lambda: dclient.inspect_container(cid)["RestartCount"] == 2
             and dclient.inspect_container(cid)["State"]["Status"] == "exited", timeout=30)
    assert dclient.logs(cid).count(b"run") == 3


def test_oom_kill_sets_state(dclient):
    cid, code, _ = run(dclient, ["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
                       host_config={"mem_limit": "16m", "memswap_limit": "16m"})
    state = dclient.inspect_container(cid)["State"]
    assert code == 137
    assert state["OOMKilled"] is True


def test_pids_limit_refuses_forks(dclient):
    _, code, out = run(dclient, ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done 2>&1; wait"],
                       host_config={"pids_limit": 4})
    assert b"fork" in out.lower() or b"resource temporarily unavailable" in out.lower()


def test_memory_limit_visible_inside(dclient):
    _, _, out = run(dclient, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"],
                    host_config={"mem_limit": "64m"})
    assert out.strip() == b"67108864"


def test_pause_unpause_rename(dclient):
    cid, _, _ = run(dclient, ["sleep", "1000"], wait=False, name="pe-pause-me")
    dclient.pause(cid)
    assert dclient.inspect_container(cid)["State"]["Paused"] is True
    with pytest.raises(docker.errors.APIError) as info:
        dclient.remove_container(cid)
    assert (info.value.status_code, info.value.explanation) == (
        409, f"You cannot remove a paused container {cid}. Unpause and then stop the container before "
        "attempting removal or force remove")
    dclient.unpause(cid)
    assert dclient.inspect_container(cid)["State"]["Status"] == "running"
    dclient.rename(cid, "pe-renamed")
    assert dclient.inspect_container("pe-renamed")["Id"] == cid
    other = dclient.create_container("busybox", ["true"], name="pe-taken")
    with pytest.raises(docker.errors.APIError) as info:
        dclient.rename(cid, "pe-taken")
    assert (info.value.status_code, info.value.explanation) == (
        409, f'Error when allocating new name: Conflict. The container name "/pe-taken" is already in use by '
        f'container "{other["Id"]}". You have to remove (or rename) that container to be able to reuse that name.')
    with pytest.raises(docker.errors.APIError) as info:
        dclient.rename(cid, "bad name")
    assert (info.value.status_code, info.value.explanation) == (
        400, "Error when allocating new name: Invalid container name (/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
        "are allowed")
    dclient.rename(cid, "/pe-slashed")
    assert dclient.inspect_container(cid)["Name"] == "/pe-slashed"
    dclient.remove_container(other["Id"])
    with pytest.raises(docker.errors.APIError) as info:
        dclient.remove_container(cid)
    assert info.value.status_code == 409
    dclient.remove_container(cid, force=True)
    with pytest.raises(docker.errors.NotFound):
        dclient.inspect_container(cid)


def test_exec_top_stats(dclient):
    cid, _, _ = run(dclient, ["sleep", "1000"], wait=False)
    exec_id = dclient.exec_create(cid, ["sh", "-c", "hostname; echo err >&2; exit 4"])["Id"]
    out = dclient.exec_start(exec_id, demux=True)
    assert out == (cid[:12].encode() + b"\n", b"err\n")
    assert dclient.exec_inspect(exec_id)["ExitCode"] == 4
    # As dockerd: ExecIDs lists the execs that have not ended (created or running); one that
    # ended, or could not start, stays inspectable.
    pending = dclient.exec_create(cid, ["true"])["Id"]
    failed = dclient.exec_create(cid, ["no-such-program"])["Id"]
    assert b"executable file not found" in dclient.exec_start(failed)  # in the stream, as dockerd
    assert dclient.inspect_container(cid)["ExecIDs"] == [pending]
    assert dclient.exec_inspect(failed)["ExitCode"] == 126
    dclient.exec_start(pending)
    assert dclient.inspect_container(cid)["ExecIDs"] is None
    top = dclient.top(cid)
    assert "PID" in top["Titles"]
    assert any("sleep 1000" in " ".join(p) for p in top["Processes"])
    stats = dclient.stats(cid, stream=False)
    assert stats["memory_stats"]["usage"] > 0
    assert stats["pids_stats"]["current"] >= 1


def test_copy_in_and_out(dclient):
    cid, _, _ = run(dclient, ["sleep", "1000"], wait=False)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"copied in\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert dclient.put_archive(cid, "/tmp", buf.getvalue())
    exec_id = dclient.exec_create(cid, ["cat", "/tmp/hello.txt"])["Id"]
    assert dclient.exec_start(exec_id) == b"copied in\n"
    stream, stat = dclient.get_archive(cid, "/etc/hostname")
    assert stat["name"] == "hostname"
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert tar.extractfile("hostname").read().strip() == cid[:12].encode()


def test_logs_rotation(dclient, daemon):
    cid, code, _ = run(dclient, ["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done"],
                       host_config={"log_config": {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "3"}}})
    log_path = dclient.inspect_container(cid)["LogPath"]
    directory = os.path.dirname(log_path)
    logs = [f for f in os.listdir(directory) if f.startswith(os.path.basename(log_path))]
    assert len(logs) == 3
    tail = dclient.logs(cid, tail=2)
    assert tail == b"line-398\nline-399\n"


def test_wait_and_events(dclient, daemon):
    since = time.time() - 1
    cid, code, _ = run(dclient, ["true"])
    dclient.remove_container(cid)
    events = list(dclient.events(since=since, until=time.time() + 0.5, decode=True,
                                 filters={"container": cid}))
    actions = [e["Action"] for e in events]
    assert actions == ["create", "start", "die", "destroy"]
    assert events[2]["Actor"]["Attributes"]["exitCode"] == "0"


def test_wait_for_a_stopped_and_for_a_running_container(dclient, daemon):
    """Already stopped: one complete response with the exit code. Running: the head comes
    at once (the docker CLI blocks until it arrives), the body once it exits."""
    cid, code, _ = run(dclient, ["sh", "-c", "exit 3"])
    response = daemon.api("POST", f"/v1.41/containers/{cid}/wait")
    assert response.status_code == 200 and response.json() == {"StatusCode": 3, "Error": None}
    assert response.headers.get("content-length") == str(len(response.content))
    dclient.remove_container(cid)
    cid, _, _ = run(dclient, ["sleep", "30"], wait=False)
    try:
        response = dclient.post(dclient._url("/containers/{0}/wait", cid), stream=True, timeout=10)
        assert response.status_code == 200 and response.headers["transfer-encoding"] == "chunked"
        dclient.kill(cid)
        assert json.loads(next(response.iter_lines())) == {"StatusCode": 137, "Error": None}
    finally:
        dclient.remove_container(cid, force=True)


def test_errors_are_docker_shaped(dclient, daemon):
    response = daemon.api("GET", "/v1.41/containers/nope/json")
    assert response.status_code == 404
    assert response.json() == {"message": "No such container: nope"}
    response = daemon.api("POST", "/v1.41/containers/create", json={"Image": "no-such-image"})
    assert response.status_code == 404
    response = daemon.api("POST", "/v1.41/containers/create",
                          json={"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}})
    assert response.status_code == 400 and "restart policy" in response.json()["message"]
    cid, _, _ = run(dclient, ["sleep", "100"], wait=False)
    assert daemon.api("POST", f"/containers/{cid}/start").status_code == 304
    dclient.remove_container(cid, force=True)


def test_network_none_has_loopback_up_and_host_sees_host(dclient):
    _, code, out = run(dclient, ["sh", "-c", "cat /sys/class/net/lo/operstate; ls /sys/class/net"],
                       host_config={"network_mode": "none"})
    lines = out.decode().split()
    assert lines[0] in ("unknown", "up") and lines[1:] == ["lo"]
    # The host's own network namespace (compared by identity: the host's link list changes
    # under anything else creating veths meanwhile).
    _, code, out = run(dclient, ["readlink", "/proc/self/ns/net"], host_config={"network_mode": "host"})
    assert out.decode().strip() == os.readlink("/proc/self/ns/net")


def test_tty_and_resize(dclient):
    container = dclient.create_container("busybox", ["sh", "-c", "tty; sleep 0.5; stty size"], tty=True)
    cid = container["Id"]
    dclient.start(cid)
    dclient.resize(cid, height=33, width=111)
    assert dclient.wait(cid, timeout=30)["StatusCode"] == 0
    out = dclient.logs(cid).decode().split("\r\n")
    assert out[0] == "/dev/pts/0"
    assert out[1] == "33 111"


def test_rm_answers_before_its_background_cleanup_and_that_leaves_nothing(dclient, daemon):
    """rm frees the id and the name at once; the directory (moved into the scratch dir) goes
    in the background, and nothing of the container is left once it has."""
    from tests.conftest import _mounts_under

    cid, code, _ = run(dclient, ["true"], name="pe-rm-bg")
    assert code == 0
    running = dclient.create_container("busybox", ["sleep", "1000"], name="pe-rm-bg-running")
    dclient.start(running)
    for container in (cid, running["Id"]):
        dclient.remove_container(container, force=True)
        with pytest.raises(docker.errors.NotFound):
            dclient.inspect_container(container)
        assert not os.path.exists(os.path.join(daemon.data_root, "containers", container))
    again = dclient.create_container("busybox", ["true"], name="pe-rm-bg")  # the name is free
    dclient.remove_container(again)

    def gone():
        scratch = os.path.join(daemon.data_root, "tmp")
        left = [e for e in (os.listdir(scratch) if os.path.isdir(scratch) else []) if e.startswith("removed-")]
        return not left and not [m for m in _mounts_under(daemon.root) if cid in m or running["Id"] in m] \
            and cgroup_dirs_for(cid) == [] and cgroup_dirs_for(running["Id"]) == []
    wait_for(gone, what="the removed containers' files and cgroups to go")


def test_a_new_container_gets_nothing_of_a_removed_one(dclient, daemon):
    """rm's background deletion keeps a few emptied directories for new containers
    (engine/containers/reclaim.py): a container created after one that wrote to its rootfs,
    exited and was removed starts from an empty upper layer and directory."""
    cid, code, _ = run(dclient, ["sh", "-c", "echo x > /written; mkdir -p /d/e; echo y > /d/e/f"])
    assert code == 0
    dclient.remove_container(cid)
    scratch = os.path.join(daemon.data_root, "tmp")
    wait_for(lambda: not [e for e in os.listdir(scratch) if e.startswith("removed-")],
             what="the removed container's files to go")
    spares = [e for e in os.listdir(scratch) if e.startswith("spare-")]
    assert spares  # an emptied directory kept for reuse, with what the container left untouched
    assert sorted(os.listdir(os.path.join(scratch, spares[-1]))) == [
        "config.v2.json.tmp", "config.v2.json.tmp2", "diff", "hostname", "hosts", "merged", "resolv.conf", "work"]
    new = dclient.create_container("busybox", ["true"])["Id"]
    assert len([e for e in os.listdir(scratch) if e.startswith("spare-")]) == len(spares) - 1
    directory = os.path.join(daemon.data_root, "containers", new)
    assert sorted(os.listdir(directory)) == ["config.v2.json", "config.v2.json.tmp", "diff", "hostname", "hosts",
                                              "merged", "resolv.conf", "work"]
    assert os.listdir(os.path.join(directory, "diff")) == [] and os.listdir(os.path.join(directory, "work")) == []
    dclient.start(new)
    assert dclient.wait(new)["StatusCode"] == 0
    assert dclient.diff(new) in ([], None)
    dclient.remove_container(new)


def test_rm_leaves_nothing_whatever_ran_before(dclient, daemon):
    """rm undoes what a container left on the host, whichever way it got there: never started,
    ran and exited (its supervisor undid the run: rm only moves the directory), its rootfs
    mounted again by a copy after the run, a restarting run's."""
    from tests.conftest import _mounts_under

    never = dclient.create_container("busybox", ["true"])["Id"]
    ran, code, _ = run(dclient, ["true"])
    assert code == 0
    copied, code, _ = run(dclient, ["true"])
    stream, _ = dclient.get_archive(copied, "/etc/hostname")  # mounts the stopped rootfs
    b"".join(stream)
    restarting = dclient.create_container("busybox", ["false"], host_config=dclient.create_host_config(
        restart_policy={"Name": "always"}))["Id"]
    dclient.start(restarting)
    ids = [never, ran, copied, restarting]
    for cid in ids:
        dclient.remove_container(cid, force=True)
        assert not os.path.exists(os.path.join(daemon.data_root, "containers", cid))

    def gone():
        mounts = _mounts_under(daemon.root)
        return all(not [m for m in mounts if cid in m] and cgroup_dirs_for(cid) == [] for cid in ids)
    wait_for(gone, what="the removed containers' mounts and cgroups to go")


def test_failed_create_leaves_nothing(dclient, daemon):
    containers_dir = os.path.join(daemon.data_root, "containers")
    before = set(os.listdir(containers_dir))
    for body in ({"Image": "busybox", "HostConfig": {"Memory": 1024}},
                 {"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "lots"}}}},
                 {"Image": "busybox", "Cmd": ["true"], "WorkingDir": "relative"}):
        response = daemon.api("POST", "/containers/create", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["message"]
    assert set(os.listdir(containers_dir)) == before


def test_capabilities_privileged_and_cap_add(dclient):
    bounding = next(int(line.split()[1], 16) for line in open("/proc/self/status") if line.startswith("CapBnd:"))
    _, code, out = run(dclient, ["grep", "CapEff", "/proc/self/status"], host_config={"privileged": True})
    assert code == 0 and int(out.split()[1], 16) == bounding
    _, code, out = run(dclient, ["grep", "CapEff", "/proc/self/status"],
                       host_config={"cap_drop": ["ALL"], "cap_add": ["NET_RAW"]})
    assert int(out.split()[1], 16) == 1 << 13
    with pytest.raises(docker.errors.APIError) as info:
        dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(cap_add=["NOT_A_CAP"]))
    assert info.value.status_code == 400 and "NOT_A_CAP" in str(info.value)


def test_privileged_gets_host_devices(dclient):
    import stat as stat_

    def host_can_open(name):
        try:
            os.close(os.open(os.path.join("/dev", name), os.O_RDONLY))
            return True
        except OSError:
            return False

    block = sorted(name for name in os.listdir("/dev")
                   if stat_.S_ISBLK(os.stat(os.path.join("/dev", name)).st_mode) and host_can_open(name))
    assert block, "the host has no block device to look for"
    probe = f"ls /dev; dd if=/dev/{block[0]} of=/dev/null bs=512 count=1 2>&1"
    _, code, out = run(dclient, ["sh", "-c", probe], host_config={"privileged": True})
    assert block[0] in out.decode().split() and "records in" in out.decode()  # opened it
    _, code, out = run(dclient, ["sh", "-c", probe])
    assert block[0] not in out.decode().split()


def test_system_df_counts_what_exists(dclient, daemon):
    cid, code, _ = run(dclient, ["sh", "-c", "head -c 5000 /dev/zero > /written"])
    df = daemon.api("GET", "/system/df").json()
    busybox = [i for i in df["Images"] if "busybox:latest" in (i.get("RepoTags") or [])]
    assert busybox and busybox[0]["Containers"] >= 1
    mine = [c for c in df["Containers"] if c["Id"] == cid]
    assert mine and mine[0]["SizeRw"] >= 5000


def test_system_df_shared_sizes_as_dockerds(dclient, daemon):
    """Layers two images share count once in LayersSize and as SharedSize in each (the docker
    CLI's reclaimable space and `system df -v`'s unique size come from them)."""
    cid, code, _ = run(dclient, ["sh", "-c", "head -c 3000 /dev/zero > /written"])
    image = dclient.commit(cid, repository="pe-df-shared", tag="t")["Id"]
    try:
        df = daemon.api("GET", "/system/df").json()
        by_id = {i["Id"]: i for i in df["Images"]}
        base = next(i for i in df["Images"] if "busybox:latest" in (i.get("RepoTags") or []))
        child = by_id[image]
        assert base["SharedSize"] == base["Size"]  # its only layer is the child's first
        assert child["SharedSize"] == base["Size"]
        assert child["Size"] - child["SharedSize"] >= 3000  # the committed layer is its own
        # each layer once: not the sum of the images' sizes, which counts busybox's twice
        assert base["Size"] + child["Size"] - child["SharedSize"] <= df["LayersSize"]
        assert df["LayersSize"] <= sum(i["Size"] for i in df["Images"]) - base["Size"]
    finally:
        dclient.remove_image(image)


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def test_a_bind_over_the_data_root_does_not_pin_other_containers_mounts(dclient, daemon):
    """As dockerd: the data root is a shared mount and a bind of a directory holding it is
    rslave, so a rootfs overlay unmounted on the host also leaves such a container (it stayed
    there, alive over a directory the daemon reuses)."""
    assert any(f.startswith("shared:") for f in _mount_fields(daemon.data_root))
    before, _, _ = run(dclient, ["sleep", "1000"], wait=False)
    watcher, _, _ = run(dclient, ["sleep", "1000"], wait=False, host_config={"binds": [f"{daemon.root}:/h"]})
    assert [m["Propagation"] for m in dclient.inspect_container(watcher)["Mounts"]] == ["rslave"]
    after, _, _ = run(dclient, ["sleep", "1000"], wait=False)
    pid = dclient.inspect_container(watcher)["State"]["Pid"]

    def seen() -> set[str]:
        with open(f"/proc/{pid}/mountinfo") as f:
            text = f.read()
        return {cid for cid in (before, after) if cid in text}

    assert seen() == {before, after}
    for cid in (before, after):
        dclient.remove_container(cid, force=True)
    assert seen() == set()


def _mount_fields(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        fields = [line.split() for line in f]
    return next(parts[6:parts.index("-")] for parts in reversed(fields) if parts[4] == path)


def test_pid_and_ipc_of_another_container(dclient, daemon):
    """PidMode and IpcMode container:<ref>, as dockerd: the joiner sees the donor's processes,
    and its SysV IPC and /dev/shm when the donor is IpcMode shareable (a host-side tmpfs, gone
    with the run); a private donor, a stopped one or a missing one is refused."""
    donor = dclient.create_container("busybox", ["sh", "-c", "echo donor > /dev/shm/x; exec sleep 600"],
                                     host_config=dclient.create_host_config(ipc_mode="shareable", shm_size="8m"))["Id"]
    private = dclient.create_container("busybox", ["sleep", "600"])["Id"]
    try:
        dclient.start(donor)
        dclient.start(private)
        shm = os.path.join(daemon.data_root, "containers", donor, "shm")
        assert _mounted(shm)
        wait_for(lambda: dclient.exec_start(dclient.exec_create(donor, ["cat", "/dev/shm/x"])["Id"]) == b"donor\n",
                 what="the donor's shm file")
        _, code, out = run(dclient, ["ps", "-o", "pid,args"], host_config={"pid_mode": f"container:{donor}"})
        assert code == 0 and "1 sleep 600" in " ".join(out.decode().split()), out
        donor_ipc = dclient.exec_start(dclient.exec_create(donor, ["readlink", "/proc/self/ns/ipc"])["Id"])
        _, code, out = run(dclient, ["sh", "-c", "cat /dev/shm/x; readlink /proc/self/ns/ipc; df -k /dev/shm"],
                           host_config={"ipc_mode": f"container:{donor}"})
        lines = out.decode().splitlines()
        assert code == 0 and lines[:2] == ["donor", donor_ipc.decode().strip()], out
        assert lines[-1].split()[1] == "8192"  # the donor's --shm-size

        for mode, message in ((f"container:{private}", f"can't join IPC of container {private}: non-shareable IPC"),):
            cid = dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(ipc_mode=mode))["Id"]
            with pytest.raises(docker.errors.APIError) as err:
                dclient.start(cid)
            assert err.value.status_code == 500 and message in err.value.explanation
            dclient.remove_container(cid)
        dclient.stop(private, timeout=0)
        cid = dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(
            pid_mode=f"container:{private}"))["Id"]
        with pytest.raises(docker.errors.APIError) as err:
            dclient.start(cid)
        assert err.value.explanation == f"container {private} is not running"
        dclient.remove_container(cid)
        for key in ("pid_mode", "ipc_mode"):
            with pytest.raises(docker.errors.APIError) as err:
                dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(
                    **{key: "container:pe-no-such"}))
            assert (err.value.status_code, err.value.explanation) == (400, "No such container: pe-no-such")
    finally:
        dclient.remove_container(donor, force=True)
        dclient.remove_container(private, force=True)
    assert not _mounted(shm)


def test_ipc_host_and_none(dclient):
    _, code, out = run(dclient, ["sh", "-c", "readlink /proc/self/ns/ipc; mount | grep -c ' /dev/shm '"],
                       host_config={"ipc_mode": "host"})
    assert out.decode().split() == [os.readlink("/proc/self/ns/ipc"), "1"]
    _, code, out = run(dclient, ["sh", "-c", "test -e /dev/shm || echo no-shm; mount | grep -c ' /dev/shm '"],
                       host_config={"ipc_mode": "none"})
    assert out.decode().split() == ["no-shm", "0"]


def test_wait_for_removal_of_a_failed_start_has_no_error(dclient):
    """As dockerd: the docker CLI's `run --rm` reports a failed start once (from start), not
    again as "Error waiting for container"."""
    cid = dclient.create_container("busybox", ["pe-no-such-command"],
                                   host_config=dclient.create_host_config(auto_remove=True))["Id"]
    # the daemon answers with the headers at once, the body once the container is gone
    waiting = dclient._post(dclient._url("/containers/{0}/wait", cid), params={"condition": "removed"},
                            stream=True)
    assert waiting.status_code == 200
    with pytest.raises(docker.errors.APIError):
        dclient.start(cid)
    assert json.loads(waiting.raw.read()) == {"StatusCode": 127, "Error": None}


def test_archive_of_a_missing_path_names_the_container_as_asked(dclient, daemon):
    cid = dclient.create_container("busybox", ["true"], name="pe-cp-named")["Id"]
    try:
        for ref in ("pe-cp-named", cid[:12]):
            r = daemon.api("GET", f"/containers/{ref}/archive", params={"path": "/nope"})
            assert (r.status_code, r.json()["message"]) == (404, f"Could not find the file /nope in container {ref}")
    finally:
        dclient.remove_container(cid)


@pytest.mark.parametrize("host_config, mount_options", [
    ({"tmpfs": {"/t": ""}}, {"rw", "nosuid", "nodev", "noexec"}),
    ({"tmpfs": {"/t": "exec,size=1m"}}, {"rw", "nosuid", "nodev", "size=1024k"}),
    ({"tmpfs": {"/t": "ro,size=2m,mode=0750,uid=1000"}}, {"ro", "nosuid", "nodev", "noexec", "size=2048k",
                                                        "mode=750", "uid=1000"}),
    ({"mounts": [{"Type": "tmpfs", "Target": "/t", "ReadOnly": True,
                  "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o700}}]},
     {"ro", "nosuid", "nodev", "noexec", "size=1024k", "mode=700"}),
])
def test_tmpfs_options_as_dockerd_merges_them(dclient, host_config, mount_options):
    """noexec, nosuid and nodev by default, the user's options added (exec wins over noexec),
    --mount's read-only and mode applied: /proc/mounts as with dockerd."""
    _, code, out = run(dclient, ["grep", " /t ", "/proc/mounts"], host_config=host_config)
    assert code == 0, out
    options = set(out.decode().split()[3].split(",")) - {"relatime"}
    assert options == mount_options


def test_invalid_tmpfs_option_fails_the_start_with_dockerds_message(dclient):
    cid = dclient.create_container("busybox", ["true"], host_config=dclient.create_host_config(
        tmpfs={"/t": "size=1m,foo=bar"}))["Id"]
    try:
        with pytest.raises(docker.errors.APIError) as err:
            dclient.start(cid)
        assert err.value.explanation == 'invalid tmpfs option ["foo" "bar"]'
    finally:
        dclient.remove_container(cid)


def test_list_filters_and_sizes_as_dockerd(dclient, daemon):
    """ps filters dockerd has and this daemon accepted but ignored (volume, expose, publish),
    network by attached network, name regexps with or without the slash, and --size."""
    net = dclient.create_network("pe-ps-net")["Id"]
    first = dclient.create_container(
        "busybox", ["sh", "-c", "head -c 5000 /dev/zero > /f; exec sleep 600"], name="pe-ps-first",
        ports=[80, 81], volumes=["/data"],
        host_config=dclient.create_host_config(port_bindings={81: ("127.0.0.1", None)},
                                               binds=["pe-ps-vol:/data"], network_mode="pe-ps-net"))["Id"]
    second = dclient.create_container("busybox", ["sleep", "600"], name="pe-ps-second")["Id"]
    try:
        dclient.start(first)
        dclient.start(second)
        public = dclient.port(first, 81)[0]["HostPort"]

        def names(**filters):
            return {c["Names"][0] for c in dclient.containers(all=True, filters=filters)} & {"/pe-ps-first", "/pe-ps-second"}

        assert names(volume="pe-ps-vol") == names(volume="/data") == {"/pe-ps-first"}
        # COMMAND as dockerd writes it: an argument with a space in single quotes
        commands = {c["Names"][0]: c["Command"] for c in dclient.containers(filters={"name": "pe-ps-"})}
        assert commands == {"/pe-ps-first": "sh -c 'head -c 5000 /dev/zero > /f; exec sleep 600'",
                            "/pe-ps-second": "sleep 600"}
        assert names(expose="80") == names(expose="81/tcp") == names(expose="70-90") == {"/pe-ps-first"}
        assert names(expose="80/udp") == set() and names(publish="81") == set()
        assert names(publish=public) == {"/pe-ps-first"}
        assert names(network="pe-ps-net") == names(network=net[:12]) == {"/pe-ps-first"}
        assert names(network="bridge") == {"/pe-ps-second"}
        assert names(name="^pe-ps-f") == names(name="^/pe-ps-f") == {"/pe-ps-first"}
        wait_for(lambda: dclient.exec_start(dclient.exec_create(first, ["stat", "-c", "%s", "/f"])["Id"]) == b"5000\n",
                 what="the written file")
        listed = next(c for c in dclient.containers(size=True) if c["Id"] == first)
        inspected = daemon.api("GET", f"/containers/{first}/json", params={"size": 1}).json()
        image_size = dclient.inspect_image("busybox")["Size"]
        for shape in (listed, inspected):
            assert shape["SizeRw"] >= 5000 and shape["SizeRootFs"] == shape["SizeRw"] + image_size
    finally:
        dclient.remove_container(first, force=True)
        dclient.remove_container(second, force=True)
        dclient.remove_network(net)
        dclient.remove_volume("pe-ps-vol")


def test_image_list_filters_as_dockerd(dclient):
    """reference lists only the matching tags of an image (the CLI shows one row per tag),
    before/since compare creation times, unknown filters are refused."""
    dclient.tag("busybox", "pe-ref-a", "one")
    cid = dclient.create_container("busybox", ["true"])["Id"]
    newer = dclient.commit(cid, repository="pe-ref-b", tag="two", changes=["LABEL k=v"])["Id"]
    dclient.remove_container(cid)
    try:
        def tags(**filters):
            return sorted(t for i in dclient.images(filters=filters) for t in i["RepoTags"])

        assert tags(reference="pe-ref-a") == ["pe-ref-a:one"]  # not busybox:latest, the same image
        assert tags(reference="pe-ref-*") == ["pe-ref-a:one", "pe-ref-b:two"]
        assert tags(reference="pe-ref-b:two") == ["pe-ref-b:two"]
        assert "pe-ref-b:two" not in tags(before="pe-ref-b:two") and "busybox:latest" in tags(before="pe-ref-b:two")
        assert "pe-ref-b:two" in tags(since="busybox") and "busybox:latest" not in tags(since="busybox")
        with pytest.raises(docker.errors.APIError) as err:
            dclient.images(filters={"foo": "bar"})
        assert (err.value.status_code, err.value.explanation) == (400, "Invalid filter 'foo'")
        with pytest.raises(docker.errors.NotFound):
            dclient.images(filters={"before": "pe-no-such-image"})
    finally:
        dclient.remove_image(newer)
        dclient.remove_image("pe-ref-a:one")


def test_commit_pauses_a_running_container_as_dockerd(dclient, daemon):
    """dockerd's commit holds a running container still (pause=true by default): pause, the
    tag, commit, unpause; `pause=0` commits it running. It runs on afterwards either way."""
    cid = dclient.create_container("busybox", ["sh", "-c", "echo x > /f; sleep 300"], name="pe-commit-pause")["Id"]
    try:
        dclient.start(cid)
        wait_for(lambda: dclient.exec_start(dclient.exec_create(cid, ["cat", "/f"])["Id"]) == b"x\n",
                 what="the container's file")
        since = time.time()
        held = dclient.commit(cid, repository="pe-commit-paused", tag="v1")["Id"]
        live = dclient.commit(cid, repository="pe-commit-live", tag="v1", pause=False)["Id"]
        events = list(dclient.events(since=since, until=time.time() + 1, decode=True,
                                     filters={"container": cid}))
        assert [e["Action"] for e in events] == ["pause", "commit", "unpause", "commit"]
        assert dclient.inspect_container(cid)["State"]["Status"] == "running"
        for image in (held, live):
            out = dclient.create_container(image, ["cat", "/f"])["Id"]
            dclient.start(out)
            assert dclient.wait(out)["StatusCode"] == 0 and dclient.logs(out) == b"x\n"
            dclient.remove_container(out)
    finally:
        dclient.remove_container(cid, force=True)
        for ref in ("pe-commit-paused:v1", "pe-commit-live:v1"):
            try:
                dclient.remove_image(ref)
            except docker.errors.NotFound:
                pass


def test_commit_of_a_container_exiting_meanwhile_still_commits(dclient, daemon):
    """docker-py's own commit test: `touch /test` started and committed at once, so the
    container often exits while commit pauses it; pausing then fails (its cgroup is gone),
    which commit lets go of, as dockerd does, and `docker pause` answers 409, not 500."""
    for _ in range(20):
        cid = dclient.create_container("busybox", ["touch", "/test"])["Id"]
        try:
            dclient.start(cid)
            image = dclient.commit(cid)["Id"]
            dclient.remove_image(image)
            try:
                dclient.pause(cid)
                dclient.unpause(cid)  # still running when paused: nothing to check
            except docker.errors.APIError as exc:
                assert exc.status_code == 409, exc
        finally:
            dclient.remove_container(cid, force=True)


def test_image_events_as_dockerds(dclient, daemon):
    """Checked side by side with dockerd 20.10: the image id as actor, the familiar tag or the
    id as name, the image's labels while it exists; commit is the container's event."""
    since = time.time()
    dclient.tag("busybox", "pe-ev-tag", "x")
    cid = dclient.create_container("busybox", ["true"], name="pe-ev-src", labels={"a": "b"})["Id"]
    new = dclient.commit(cid, repository="pe-ev-commit", tag="v1", message="msg")["Id"]
    dclient.remove_container(cid)
    dclient.remove_image("pe-ev-tag:x")
    dclient.remove_image("pe-ev-commit:v1")
    busybox = dclient.inspect_image("busybox")["Id"]
    events = list(dclient.events(since=since, until=time.time() + 1, decode=True))
    seen = [(e["Type"], e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in events
            if e["Type"] == "image" or e["Action"] == "commit"]
    assert seen == [
        ("image", "tag", busybox, {"name": "pe-ev-tag:x"}),
        ("image", "tag", new, {"a": "b", "name": "pe-ev-commit:v1"}),
        ("container", "commit", cid, {"a": "b", "comment": "msg", "image": "busybox", "imageID": new,
                                      "imageRef": "pe-ev-commit:v1", "name": "pe-ev-src"}),
        ("image", "untag", busybox, {"name": busybox}),
        ("image", "untag", new, {"a": "b", "name": new}),
        ("image", "delete", new, {"name": new}),
    ]


def test_update_refuses_the_requests_own_values_in_dockerds_words(dclient):
    """dockerd checks an update's own values before merging them (no "Cannot update container"
    in front); what only the merged values break is an update error."""
    cid = dclient.create_container("busybox", ["true"])["Id"]
    try:
        for kwargs, message in (
            ({"cpu_period": 500}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
            ({"cpu_quota": 500}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
            ({"mem_limit": "10m", "mem_reservation": "1g"},
             "Minimum memory limit can not be less than memory reservation limit, see usage"),
        ):
            with pytest.raises(docker.errors.APIError) as info:
                dclient.update_container(cid, **kwargs)
            assert (info.value.status_code, info.value.explanation) == (400, message)
        dclient.update_container(cid, cpu_period=100000, cpu_quota=50000)
        # swap alone is fine once the container has a memory limit (dockerd's update skips
        # its create-time "set the Memory limit too" rule)
        dclient.update_container(cid, mem_limit="100m", memswap_limit="200m")
        dclient.update_container(cid, memswap_limit="300m")
        host = dclient.inspect_container(cid)["HostConfig"]
        assert (host["CpuPeriod"], host["CpuQuota"]) == (100000, 50000)
        assert (host["Memory"], host["MemorySwap"]) == (100 << 20, 300 << 20)
    finally:
        dclient.remove_container(cid, force=True)


def test_own_network_namespace_gets_dockerds_default_sysctls(dclient):
    """dockerd 20.10 lets a container with a network namespace of its own bind ports below
    1024 and open ICMP echo sockets without capabilities; --sysctl still wins, and the host's
    namespace is left as it is."""
    script = ("cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start; "
              "nc -l -p 80 & sleep 0.3; netstat -tln | grep -c ':80 '")
    _, code, out = run(dclient, ["sh", "-c", script], user="1000", host_config={"network_mode": "none"})
    assert (code, out.decode().split("\n")[:3]) == (0, ["0\t2147483647", "0", "1"]), out
    _, _, out = run(dclient, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
                    host_config={"network_mode": "none", "sysctls": {"net.ipv4.ip_unprivileged_port_start": "500"}})
    assert out.decode().strip() == "500"
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        host_value = f.read().strip()
    _, _, out = run(dclient, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
                    host_config={"network_mode": "host"})
    assert out.decode().strip() == host_value
