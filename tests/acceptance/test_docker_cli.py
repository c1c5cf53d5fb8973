"""The real docker CLI (client 28.x) against a private pyengined, via DOCKER_HOST."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from tests.conftest import needs_root, wait_for

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]


@pytest.fixture
def docker(daemon):
    names: list[str] = []

    def run(*args, input=None, timeout=60, check=False):
        result = subprocess.run([DOCKER, *args], env=daemon.env(), input=input, capture_output=True,
                                timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    run.names = names
    yield run
    for name in names:
        run("rm", "-f", name)


def run_in_pty(args, env, timeout=30, typed: bytes = b""):
    """Run a command with a pseudo-terminal as its stdin/stdout (for -it), typing `typed` once
    it has printed something; output + exit code."""
    master, slave = pty.openpty()
    process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if typed:
                os.write(master, typed)
                typed = b""
        elif process.poll() is not None:
            break
    os.close(master)
    return output, process.wait(timeout=10)


def test_version_reports_api_141(docker):
    result = docker("version", "--format", "{{.Server.APIVersion}}", check=True)
    assert result.stdout.strip() == b"1.41"


def test_run_attached_output_and_exit_codes(docker):
    result = docker("run", "--rm", "busybox", "echo", "hello")
    assert (result.returncode, result.stdout) == (0, b"hello\n")
    assert docker("run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 7").returncode == 7
    missing = docker("run", "--rm", "busybox", "no-such-cmd")
    assert missing.returncode == 127
    assert b"executable file not found" in missing.stderr


def test_run_with_stdin(docker):
    result = docker("run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z", input=b"shout\n")
    assert result.stdout == b"SHOUT\n"


def test_process_env_is_dockerds(docker):
    """PATH, HOSTNAME, TERM (with -t), then the container's Env over them; `-e NAME` of a
    variable the client does not have is unset, not passed on as "NAME"; an exec's Env goes
    over the container's, TERM only with the exec's own -t."""
    assert "PE_UNSET_VAR" not in os.environ
    out = docker("run", "--rm", "-t", "-e", "A=1", "-e", "PE_UNSET_VAR", "-e", "PATH=/bin", "busybox", "env",
                 check=True).stdout.decode().replace("\r\n", "\n").splitlines()
    assert [line.split("=")[0] for line in out] == ["PATH", "HOSTNAME", "TERM", "A", "HOME"]
    assert (out[0], out[2], out[3]) == ("PATH=/bin", "TERM=xterm", "A=1")
    docker.names.append("pe-cli-env")
    docker("run", "-d", "-t", "--name", "pe-cli-env", "-e", "PE_UNSET_VAR", "-e", "C=1", "busybox", "sleep", "60",
           check=True)
    inspected = json.loads(docker("inspect", "-f", "{{json .Config.Env}}", "pe-cli-env", check=True).stdout)
    # The request's entries first, then the image's (the 28.x CLI itself sometimes sends -e's
    # out of command-line order, so the request's two are compared as a set).
    assert set(inspected[:2]) == {"PE_UNSET_VAR", "C=1"} and inspected[2].startswith("PATH=")
    assert len(inspected) == 3
    out = docker("exec", "-e", "PE_UNSET_VAR", "-e", "C=2", "-e", "A=3", "pe-cli-env", "env",
                 check=True).stdout.decode().splitlines()
    assert [line.split("=")[0] for line in out] == ["PATH", "HOSTNAME", "C", "A", "HOME"]
    assert (out[2], out[3]) == ("C=2", "A=3")


def test_start_with_a_passwd_too_large_for_the_host_operations(docker, daemon):
    """A start's host side runs as host operations, which read /etc/passwd into 256 KiB: a
    larger one fails that list, which is undone, and the start is done in a worker thread
    instead — the container runs as its user, and leaves no mount or cgroup behind."""
    docker.names.append("pe-cli-bigpasswd")
    docker("run", "--name", "pe-cli-bigpasswd", "busybox", "sh", "-c",
           "yes 'filler:x:1000:1000::/home/filler:/bin/sh' | head -n 8000 >> /etc/passwd;"
           " echo 'big:x:4242:4242::/home/big:/bin/sh' >> /etc/passwd", check=True)
    docker("commit", "pe-cli-bigpasswd", "pe-bigpasswd:1", check=True)
    try:
        result = docker("run", "--name", "pe-cli-bigpasswd-run", "-u", "big", "pe-bigpasswd:1", "sh", "-c",
                        "id -u; echo $HOME; wc -c < /etc/passwd", check=True)
        docker.names.append("pe-cli-bigpasswd-run")
        uid, home, size = result.stdout.decode().split()
        assert (uid, home) == ("4242", "/home/big") and int(size) > 256 * 1024
        cid = docker("inspect", "-f", "{{.Id}}", "pe-cli-bigpasswd-run", check=True).stdout.decode().strip()
        with open("/proc/self/mountinfo") as f:
            assert cid not in f.read()  # exited: its rootfs is unmounted
        assert not any(cid in dirs for _, dirs, _ in os.walk("/sys/fs/cgroup/memory"))
    finally:
        docker("rm", "-f", "pe-cli-bigpasswd-run")
        docker("rmi", "pe-bigpasswd:1")


def test_run_tty(docker, daemon):
    output, code = run_in_pty([DOCKER, "run", "--rm", "-it", "busybox", "sh", "-c", "tty; exit 3"], daemon.env())
    assert b"/dev/pts/0" in output
    assert code == 3


def test_run_interactive_shell(docker, daemon):
    output, code = run_in_pty([DOCKER, "run", "--rm", "-it", "busybox", "sh", "-c", "echo ready; read x; echo got-$x; exit 6"],
                              daemon.env(), typed=b"typed\r")
    assert b"got-typed" in output
    assert code == 6


def test_start_attach_stopped_container(docker):
    docker.names.append("pe-cli-again")
    assert docker("run", "--name", "pe-cli-again", "busybox", "echo", "once").stdout == b"once\n"
    assert docker("start", "-a", "pe-cli-again").stdout == b"once\n"


def test_detached_lifecycle(docker, daemon):
    docker.names.append("pe-cli-web")
    cid = docker("run", "-d", "--name", "pe-cli-web", "-l", "tier=front", "busybox", "sh", "-c",
                 "while true; do echo tick; sleep 0.2; done", check=True).stdout.decode().strip()
    assert len(cid) == 64
    ps = docker("ps", check=True).stdout.decode()
    assert "pe-cli-web" in ps and "Up " in ps
    assert docker("ps", "-q", "--filter", "name=pe-cli-web", "--filter", "label=tier=front", check=True).stdout.decode().strip() == cid[:12]
    assert docker("ps", "-q", "--filter", "status=exited", "--filter", "name=pe-cli-web").stdout.strip() == b""
    assert docker("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Config.Image}}", "pe-cli-web", check=True).stdout.strip() == b"running true busybox"
    wait_for(lambda: docker("logs", "--tail", "1", "pe-cli-web", check=True).stdout == b"tick\n",
             what="the first tick in the log")
    assert docker("exec", "pe-cli-web", "cat", "/etc/hostname", check=True).stdout.strip() == cid[:12].encode()
    output, code = run_in_pty([DOCKER, "exec", "-it", "pe-cli-web", "sh", "-c", "tty"], daemon.env())
    assert b"/dev/pts/" in output and code == 0
    top = docker("top", "pe-cli-web", check=True).stdout.decode()
    assert "PID" in top and "sleep" in top or "while true" in top
    stats = docker("stats", "--no-stream", "pe-cli-web", check=True).stdout.decode()
    assert "pe-cli-web" in stats and "MEM USAGE" in stats
    docker("pause", "pe-cli-web", check=True)
    assert "Paused" in docker("ps", "--filter", "name=pe-cli-web").stdout.decode()
    docker("unpause", "pe-cli-web", check=True)
    docker("rename", "pe-cli-web", "pe-cli-web2", check=True)
    docker.names.append("pe-cli-web2")
    docker("kill", "-s", "HUP", "pe-cli-web2", check=True)  # pid 1 without a handler ignores it
    docker("rm", "-f", "pe-cli-web2", check=True)
    assert docker("inspect", "pe-cli-web2").returncode == 1


def test_logs_follow_ends_when_container_stops(docker, daemon):
    docker.names.append("pe-cli-follow")
    docker("run", "-d", "--name", "pe-cli-follow", "busybox", "sh", "-c",
           "i=0; while true; do echo n$i; i=$((i+1)); sleep 0.1; done", check=True)
    follower = subprocess.Popen([DOCKER, "logs", "-f", "pe-cli-follow"], env=daemon.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = follower.stdout.readline()
    assert first == b"n0\n"
    docker("stop", "-t", "1", "pe-cli-follow", check=True)
    rest, _ = follower.communicate(timeout=20)
    assert follower.returncode == 0
    assert b"n3\n" in rest


def test_logs_details_show_the_env_and_labels_the_log_options_pick(docker):
    """--log-opt env/labels/…-regex: each json-file line carries those values (attrs), and
    docker logs --details prints them first, query-escaped and sorted, as dockerd does."""
    docker("run", "--name", "cli-details", "-e", "E1=a b&c", "-e", "E2=z", "-l", "L1=y", "--log-opt", "env-regex=^E",
           "--log-opt", "labels=L1,missing", "busybox", "echo", "hi", check=True)
    try:
        shown = docker("logs", "--details", "cli-details", check=True).stdout
        assert shown == b"E1=a+b%26c,E2=z,L1=y hi\n"
        plain = docker("logs", "cli-details", check=True).stdout
        assert plain == b"hi\n"
    finally:
        docker("rm", "cli-details")
    docker("run", "--name", "cli-details", "busybox", "echo", "hi", check=True)
    try:  # no attributes: the separating space alone, as dockerd prints it
        assert docker("logs", "--details", "cli-details", check=True).stdout == b" hi\n"
    finally:
        docker("rm", "cli-details")


def test_stop_wait_start_restart(docker):
    docker.names.append("pe-cli-stop")
    docker("run", "-d", "--name", "pe-cli-stop", "busybox", "sleep", "1000", check=True)
    docker("stop", "-t", "1", "pe-cli-stop", check=True)
    assert docker("wait", "pe-cli-stop", check=True).stdout.strip() == b"137"
    docker("start", "pe-cli-stop", check=True)
    assert docker("inspect", "-f", "{{.State.Status}}", "pe-cli-stop").stdout.strip() == b"running"
    docker("restart", "-t", "1", "pe-cli-stop", check=True)
    assert docker("inspect", "-f", "{{.State.Status}}", "pe-cli-stop").stdout.strip() == b"running"


def test_cp_both_ways(docker, tmp_path):
    docker.names.append("pe-cli-cp")
    docker("run", "-d", "--name", "pe-cli-cp", "busybox", "sleep", "1000", check=True)
    src = tmp_path / "in.txt"
    src.write_text("into the container\n")
    docker("cp", str(src), "pe-cli-cp:/tmp/in.txt", check=True)
    assert docker("exec", "pe-cli-cp", "cat", "/tmp/in.txt", check=True).stdout == b"into the container\n"
    docker("cp", "pe-cli-cp:/etc/passwd", str(tmp_path / "passwd"), check=True)
    assert "root:x:0:0" in (tmp_path / "passwd").read_text()


def test_errors(docker):
    result = docker("inspect", "no-such-container")
    assert result.returncode == 1 and b"No such" in result.stderr
    result = docker("rm", "no-such-container")
    assert result.returncode == 1 and b"No such container: no-such-container" in result.stderr


def test_events(docker):
    since = str(int(time.time()) - 1)
    docker("run", "--rm", "--name", "pe-cli-events", "busybox", "true", check=True)
    docker.names.append("pe-cli-exec-events")
    docker("run", "-d", "--name", "pe-cli-exec-events", "busybox", "sleep", "60", check=True)
    docker("exec", "pe-cli-exec-events", "true", check=True)
    until = str(int(time.time()) + 1)  # in the future: `docker events` returns once it has passed
    out = docker("events", "--since", since, "--until", until, "--filter", "container=pe-cli-events",
                 "--format", "{{.Action}}", check=True).stdout.decode().split()
    assert out[:3] == ["create", "attach", "start"] or out[:2] == ["create", "start"]
    assert "die" in out and "destroy" in out
    actions = docker("events", "--since", since, "--until", until, "--filter", "container=pe-cli-exec-events",
                     "--format", "{{json .Action}}", check=True).stdout.decode().splitlines()
    assert '"exec_create: true "' in actions and '"exec_start: true "' in actions  # dockerd's trailing space
