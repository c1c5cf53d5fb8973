"""The `pyengine` CLI end to end against a private pyengined (the issue's user story)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time

import pytest

from tests.conftest import needs_root, wait_for

pytestmark = [needs_root, pytest.mark.acceptance]


@pytest.fixture
def pe(daemon):
    names: list[str] = []

    def run(*args, input=None, check=False, timeout=60):
        result = subprocess.run([sys.executable, "-m", "engine.cli", "-H", daemon.host, *args],
                                input=input, capture_output=True, timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    run.names = names
    yield run
    for name in names:
        run("rm", "-f", name)


def test_run_rm_and_exit_code(pe):
    assert pe("run", "--rm", "busybox", "echo", "hello", check=True).stdout == b"hello\n"
    assert pe("run", "--rm", "busybox", "sh", "-c", "exit 9").returncode == 9
    result = pe("run", "--rm", "busybox", "not-there")
    assert result.returncode == 127 and b"executable file not found" in result.stderr


def test_detached_container_story(pe, tmp_path):
    pe.names += ["pe-story", "pe-story2"]
    cid = pe("run", "-d", "--name", "pe-story", "-l", "k=v", "busybox", "sh", "-c",
             "while true; do echo tick; sleep 0.2; done", check=True).stdout.decode().strip()
    assert len(cid) == 64
    assert "pe-story" in pe("ps", check=True).stdout.decode()
    assert pe("ps", "-q", "--filter", "name=pe-story", "--filter", "label=k=v", check=True).stdout.decode().split() == [cid[:12]]

    def two_ticks():
        lines = pe("logs", "--tail", "2", "-t", "pe-story", check=True).stdout.decode().splitlines()
        return lines if len(lines) == 2 else None

    logs = wait_for(two_ticks, what="two ticks logged")
    assert logs[0].endswith(" tick") and logs[0][:4].isdigit()
    assert pe("exec", "pe-story", "cat", "/etc/hostname", check=True).stdout.strip() == cid[:12].encode()
    inspect = json.loads(pe("inspect", "pe-story", check=True).stdout)
    assert inspect[0]["State"]["Running"] is True
    assert "PID" in pe("top", "pe-story", check=True).stdout.decode()
    assert "pe-story" in pe("stats", "--no-stream", "pe-story", check=True).stdout.decode()
    pe("pause", "pe-story", check=True)
    pe("unpause", "pe-story", check=True)
    (tmp_path / "f.txt").write_text("copied\n")
    pe("cp", str(tmp_path / "f.txt"), "pe-story:/tmp/f.txt", check=True)
    pe("cp", "pe-story:/tmp/f.txt", str(tmp_path / "back.txt"), check=True)
    assert (tmp_path / "back.txt").read_text() == "copied\n"
    pe("kill", "-s", "HUP", "pe-story", check=True)
    pe("stop", "-t", "1", "pe-story", check=True)
    assert pe("wait", "pe-story", check=True).stdout.strip() == b"137"
    assert cid[:12] in pe("ps", "-aq", "--filter", "status=exited", check=True).stdout.decode()
    pe("start", "pe-story", check=True)
    pe("restart", "-t", "1", "pe-story", check=True)
    pe("rename", "pe-story", "pe-story2", check=True)
    pe("rm", "-f", "pe-story2", check=True)
    missing = pe("rm", "pe-story2")
    assert missing.returncode != 0 and b"No such container: pe-story2" in missing.stderr


def test_import_images_rmi(pe, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        busybox = tarfile.TarInfo("bin/busybox")
        data = open("/bin/busybox", "rb").read()
        busybox.size, busybox.mode = len(data), 0o755
        tar.addfile(busybox, io.BytesIO(data))
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(link)
    path = tmp_path / "rootfs.tar"
    path.write_bytes(buf.getvalue())
    pe("import", str(path), "pe-imported:v1", check=True)
    assert "pe-imported" in pe("images", check=True).stdout.decode()
    assert pe("run", "--rm", "pe-imported:v1", "/bin/sh", "-c", "echo imported", check=True).stdout == b"imported\n"
    pe("rmi", "pe-imported:v1", check=True)
    assert "pe-imported" not in pe("images", check=True).stdout.decode()


def test_events_since(pe):
    since = str(time.time() - 1)
    pe("run", "--rm", "--name", "pe-ev", "busybox", "true", check=True)
    out = pe("events", "--since", since, "--until", str(time.time() + 0.5), "--filter", "container=pe-ev", check=True).stdout.decode()
    assert "container create" in out and "container destroy" in out


def test_events_follow_over_websocket(pe, daemon):
    def listeners() -> int:
        return json.loads(pe("info", "--format", "{{json .NEventsListener}}", check=True).stdout)

    before = listeners()
    follower = subprocess.Popen([sys.executable, "-m", "engine.cli", "-H", daemon.host, "events", "--follow",
                                 "--filter", "container=pe-follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: listeners() > before, what="the websocket to subscribe")
        pe("run", "--rm", "--name", "pe-follow", "busybox", "true", check=True)
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("destroy" in line for line in lines):
            lines.append(follower.stdout.readline().decode())
        assert any(" container start " in line and "name=pe-follow" in line for line in lines), lines
        assert any(" container destroy " in line for line in lines), lines
    finally:
        follower.kill()
        follower.wait()


def test_exec_interactive_tty(pe, daemon):
    from tests.acceptance.test_docker_cli import run_in_pty

    pe.names.append("pe-exec-it")
    pe("run", "-d", "--name", "pe-exec-it", "busybox", "sleep", "1000", check=True)
    output, code = run_in_pty([sys.executable, "-m", "engine.cli", "-H", daemon.host, "exec", "-it",
                               "pe-exec-it", "sh", "-c", "tty; exit 4"], daemon.env())
    assert b"/dev/pts/" in output
    assert code == 4


def test_management_commands_list_their_commands(pe):
    listed = pe("container", check=True).stdout.decode()
    assert listed.startswith("Usage:  pyengine container COMMAND\n")
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ")]
    assert {"attach", "diff", "ls", "prune", "rm", "update"} <= set(names) and "list" not in names
    assert pe("container", "--help", check=True).stdout.decode() == listed
    assert "  df " in pe("system", check=True).stdout.decode()
    unknown = pe("container", "bogus")
    assert unknown.returncode == 1 and b"unknown command: pyengine container bogus" in unknown.stderr
    assert pe("container", "ls", "-a", "--format", "{{.Names}}", check=True).returncode == 0


def test_diff_update_and_container_prune(pe):
    pe.names += ["pe-diff", "pe-upd"]
    pe("run", "--name", "pe-diff", "busybox", "sh", "-c", "touch /new; rm /etc/group", check=True)
    assert pe("container", "diff", "pe-diff", check=True).stdout.decode().splitlines() == [
        "C /etc", "D /etc/group", "A /new"]
    pe("run", "-d", "--name", "pe-upd", "busybox", "sleep", "60", check=True)
    out = pe("update", "--memory", "64m", "--memory-swap", "-1", "--pids-limit", "50", "--restart", "on-failure:2",
             "--kernel-memory", "10m", "pe-upd", check=True)
    assert out.stdout == b"pe-upd\n" and b"kernel memory limit is deprecated" in out.stderr
    host = json.loads(pe("inspect", "pe-upd", check=True).stdout)[0]["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["PidsLimit"]) == (64 << 20, -1, 50)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    none = pe("update", "pe-upd")
    assert none.returncode == 125 and b"you must provide one or more flags" in none.stderr
    missing = pe("update", "--cpu-shares", "512", "pe-nosuch")
    assert missing.returncode == 1 and b"No such container: pe-nosuch" in missing.stderr
    diff_id = json.loads(pe("inspect", "pe-diff", check=True).stdout)[0]["Id"]
    pruned = pe("container", "prune", "-f", check=True).stdout.decode()
    assert pruned.startswith("Deleted Containers:\n") and diff_id in pruned and "Total reclaimed space: " in pruned
    assert pe("inspect", "pe-diff").returncode == 1 and pe("inspect", "pe-upd").returncode == 0


def test_attach_follows_a_running_container_to_its_exit(pe, daemon):
    pe.names.append("pe-attach")
    stopped = pe("attach", "pe-attach")
    assert stopped.returncode == 1 and b"No such container" in stopped.stderr
    pe("create", "--name", "pe-attach", "busybox", "sh", "-c",
       "while [ ! -f /go ]; do echo tick; sleep 0.1; done; echo late; exit 4", check=True)
    not_running = pe("attach", "pe-attach")
    assert not_running.returncode == 1
    assert not_running.stderr == b"You cannot attach to a stopped container, start it first\n"
    pe("start", "pe-attach", check=True)
    attached = subprocess.Popen([sys.executable, "-m", "engine.cli", "-H", daemon.host, "attach", "pe-attach"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert attached.stdout.readline() == b"tick\n"  # attached: the output reaches us
        pe("exec", "pe-attach", "touch", "/go", check=True)
        rest = attached.stdout.read()
        assert rest.endswith(b"late\n") and attached.wait(timeout=30) == 4
    finally:
        attached.kill()
        attached.wait()


TRAPS = 'trap "echo got-INT" INT; trap "echo got-TERM; exit 3" TERM; while :; do echo tick; sleep 0.1; done'


def _line(proc: subprocess.Popen, wanted: bytes) -> None:
    """Read the CLI's output up to a line `wanted` (ticks pass by); fail at its end."""
    while (line := proc.stdout.readline()) != wanted:
        assert line, f"output ended before {wanted!r}"


def test_run_and_attach_proxy_signals_to_the_container(pe, daemon):
    """Without a TTY, `pyengine run` and `pyengine attach` send the signals they get on to the
    container (--sig-proxy, default true), as the docker CLI does; the third SIGINT/SIGTERM
    ends the CLI, the container going on; --sig-proxy=false leaves the signal to the CLI."""
    import signal

    pe.names += ["pe-sig-run", "pe-sig-attach", "pe-sig-off"]
    cli = [sys.executable, "-m", "engine.cli", "-H", daemon.host]
    procs = []

    def start(*args):
        proc = subprocess.Popen([*cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        _line(proc, b"tick\n")  # running, attached and proxying
        return proc

    try:
        run = start("run", "--name", "pe-sig-run", "busybox", "sh", "-c", TRAPS)
        run.send_signal(signal.SIGINT)
        _line(run, b"got-INT\n")
        run.send_signal(signal.SIGTERM)
        _line(run, b"got-TERM\n")
        assert run.wait(timeout=30) == 3

        pe("run", "-d", "--name", "pe-sig-attach", "busybox", "sh", "-c", TRAPS, check=True)
        attach = start("attach", "pe-sig-attach")
        for _ in range(2):
            attach.send_signal(signal.SIGINT)
            _line(attach, b"got-INT\n")
        attach.send_signal(signal.SIGINT)
        assert attach.wait(timeout=30) == 1
        assert b"got 3 SIGTERM/SIGINTs, forcefully exiting" in attach.stderr.read()
        assert json.loads(pe("inspect", "pe-sig-attach", check=True).stdout)[0]["State"]["Running"] is True

        off = start("run", "--sig-proxy=false", "--name", "pe-sig-off", "busybox", "sh", "-c", TRAPS)
        off.send_signal(signal.SIGTERM)
        assert off.wait(timeout=30) != 3 and b"got-TERM" not in off.stdout.read()
        assert json.loads(pe("inspect", "pe-sig-off", check=True).stdout)[0]["State"]["Running"] is True
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_system_df_and_prune(pe):
    rows = pe("system", "df", check=True).stdout.decode().splitlines()
    assert rows[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [row.split()[0] for row in rows[1:]] == ["Images", "Containers", "Local", "Build"]
    assert int(rows[1].split()[1]) >= 1  # busybox at least
    kinds = pe("system", "df", "--format", "{{.Type}}", check=True).stdout.decode().splitlines()
    assert kinds == ["Images", "Containers", "Local Volumes", "Build Cache"]
    pe("network", "create", "pe-unused-net", check=True)
    pe.names.append("pe-stopped")
    pe("run", "--name", "pe-stopped", "busybox", "true", check=True)
    out = pe("system", "prune", "-f", check=True).stdout.decode()
    networks = out.split("Deleted Networks:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "Deleted Containers:\n" in out and "pe-unused-net" in networks
    assert pe("network", "inspect", "pe-unused-net").returncode == 1
    assert pe("inspect", "pe-stopped").returncode == 1


def test_run_flags_mount_labels_cidfile_and_network_alias(pe, tmp_path):
    (tmp_path / "labels").write_text("a=1\n# a comment\n\nb=2\n")
    cidfile = tmp_path / "cid"
    out = pe("run", "--rm", "--mount", "type=tmpfs,dst=/m,tmpfs-size=64k", "--label-file", str(tmp_path / "labels"),
             "-l", "b=3", "--cidfile", str(cidfile), "--cpuset-mems", "0", "busybox", "sh", "-c",
             "df -k /m | tail -1 | awk '{print $2}'", check=True).stdout
    assert out == b"64\n" and len(cidfile.read_text()) == 64
    again = pe("run", "--rm", "--cidfile", str(cidfile), "busybox", "true")
    assert again.returncode == 125 and b"container ID file found" in again.stderr
    pe.names.append("pe-flags")
    pe("create", "--name", "pe-flags", "--label-file", str(tmp_path / "labels"), "-l", "b=3",
       "--mount", "type=bind,src=/etc,dst=/host-etc,ro", "busybox", check=True)
    info = json.loads(pe("inspect", "pe-flags", check=True).stdout)[0]
    assert info["Config"]["Labels"] == {"a": "1", "b": "3"}
    assert info["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": "/etc", "Target": "/host-etc",
                                             "ReadOnly": True}]
    for spec, why in (("bogus", "invalid field 'bogus' must be a key=value pair"), ("src=/x", "target is required"),
                      ("type=bind,dst=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'")):
        bad = pe("run", "--rm", "--mount", spec, "busybox", "true")
        assert bad.returncode == 125 and why.encode() in bad.stderr, bad.stderr
    bad = pe("run", "--rm", "--pull", "sometimes", "busybox", "true")
    assert bad.returncode == 125 and b"invalid pull option: 'sometimes'" in bad.stderr
    pe("network", "create", "--subnet", "10.251.7.0/24", "pe-alias-net", check=True)
    try:
        pe.names.append("pe-aliased")
        pe("run", "-d", "--name", "pe-aliased", "--network", "pe-alias-net", "--network-alias", "db",
           "--ip", "10.251.7.9", "--mac-address", "02:42:0a:fb:07:09", "busybox", "sleep", "60", check=True)
        found = pe("run", "--rm", "--network", "pe-alias-net", "busybox", "ping", "-c1", "-W3", "db", check=True)
        assert b"10.251.7.9" in found.stdout
        assert pe("exec", "pe-aliased", "cat", "/sys/class/net/eth0/address", check=True).stdout == \
            b"02:42:0a:fb:07:09\n"
    finally:
        pe("rm", "-f", "pe-aliased")
        pe("network", "rm", "pe-alias-net")


def test_stop_signal_exec_env_file_network_options_and_iidfile(pe, tmp_path):
    pe.names.append("pe-sig")
    pe("run", "-d", "--name", "pe-sig", "busybox", "sh", "-c",
       "trap 'exit 42' USR1; while true; do sleep 0.1; done", check=True)
    (tmp_path / "env").write_text("A=from-file\n# comment\nB=2\n")
    out = pe("exec", "--env-file", str(tmp_path / "env"), "-e", "B=3", "pe-sig", "sh", "-c", "echo $A $B",
             check=True).stdout
    assert out == b"from-file 3\n"
    bad = pe("stop", "-s", "NOSUCHSIG", "pe-sig")
    assert bad.returncode == 1 and b"NOSUCHSIG" in bad.stderr
    assert pe("stop", "-s", "USR1", "--timeout", "30", "pe-sig", check=True).stdout == b"pe-sig\n"
    assert json.loads(pe("inspect", "pe-sig", check=True).stdout)[0]["State"]["ExitCode"] == 42

    created = pe("network", "create", "--subnet", "10.252.3.0/24", "--aux-address", "router=10.252.3.5",
                 "--ipam-driver", "default", "pe-aux-net", check=True)
    try:
        ipam = json.loads(pe("network", "inspect", "pe-aux-net", check=True).stdout)[0]["IPAM"]
        assert ipam["Config"][0]["AuxiliaryAddresses"] == {"router": "10.252.3.5"}, ipam
        assert len(created.stdout.strip()) == 64
    finally:
        pe("network", "rm", "pe-aux-net")
    stray = pe("network", "create", "--subnet", "10.252.4.0/24", "--aux-address", "x=10.9.9.9", "pe-aux-bad")
    assert stray.returncode == 1 and b"no matching subnet for aux-address 10.9.9.9" in stray.stderr
    pe("network", "create", "--config-only", "--subnet", "10.252.5.0/24", "pe-cfg-only", check=True)
    try:
        pe("network", "create", "--config-from", "pe-cfg-only", "pe-cfg-user", check=True)
        user = json.loads(pe("network", "inspect", "pe-cfg-user", check=True).stdout)[0]
        assert user["ConfigFrom"] == {"Network": "pe-cfg-only"}
        assert user["IPAM"]["Config"][0]["Subnet"] == "10.252.5.0/24"
    finally:
        pe("network", "rm", "pe-cfg-user")
        pe("network", "rm", "pe-cfg-only")

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\nLABEL iid=1\n")
    iidfile = tmp_path / "iid"
    pe("build", "-q", "--iidfile", str(iidfile), str(tmp_path / "ctx"), check=True)
    image_id = iidfile.read_text()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    assert pe("build", "-q", "--iidfile", str(iidfile), str(tmp_path / "ctx")).returncode != 0
    assert not iidfile.exists()  # a failed build leaves no id behind
    pe("rmi", image_id, check=True)
