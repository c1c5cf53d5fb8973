"""Detach keys (attach, run -it, exec -it: flag, query param, docker-py's config-file default)
and exec with a TTY in docker-py's non-stream and demux forms."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import time

import pytest

from tests.acceptance.test_docker_cli import run_in_pty
from tests.conftest import needs_root, wait_for

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance]
CTRL_P, CTRL_Q, CTRL_X = b"\x10", b"\x11", b"\x18"


def closed_by_daemon(sock) -> bool:
    """The daemon ended the session: reads give EOF (after any output still in flight)."""
    sock.settimeout(30)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    return True


def raw_socket(sock):
    return getattr(sock, "_sock", sock)


def test_docker_py_attach_detach_default_config_file_and_param(dclient):
    container = dclient.create_container("busybox", "cat", stdin_open=True, tty=True)
    dclient.start(container)
    events_since = int(time.time()) - 1
    # Default keys: ctrl-p ctrl-q, typed one at a time as a user would.
    sock = raw_socket(dclient.attach_socket(container, {"stdin": True, "stream": True}))
    try:
        sock.sendall(b"hello\n")
        sock.sendall(CTRL_P)
        sock.sendall(CTRL_Q)
        assert closed_by_daemon(sock)
    finally:
        sock.close()
    assert dclient.inspect_container(container)["State"]["Running"]
    # docker-py sends its config file's detachKeys; an explicit detachKeys param wins.
    dclient._general_configs["detachKeys"] = "ctrl-p"
    try:
        sock = raw_socket(dclient.attach_socket(container, {"stdin": True, "stream": True}))
        sock.sendall(CTRL_P)
        assert closed_by_daemon(sock)
        sock.close()
        sock = raw_socket(dclient.attach_socket(container, {"stdin": True, "stream": True, "detachKeys": "ctrl-x"}))
        sock.sendall(b"a" + CTRL_P + b"b\n")  # not the keys: passed through to cat
        sock.sendall(CTRL_X)
        assert closed_by_daemon(sock)
        sock.close()
    finally:
        del dclient._general_configs["detachKeys"]
    assert dclient.inspect_container(container)["State"]["Running"]
    logs = dclient.logs(container)
    assert b"hello" in logs and b"a\x10b" in logs.replace(b"^P", b"\x10")
    events = dclient.events(since=events_since, until=int(time.time()) + 1, decode=True,
                            filters={"container": container["Id"], "event": "detach"})
    assert len(list(events)) == 3
    import docker

    with pytest.raises(docker.errors.APIError) as info:
        dclient.attach_socket(container, {"stdin": True, "stream": True, "detachKeys": "ctrl-1"})
    assert "Invalid detach keys (ctrl-1) provided" in str(info.value)
    dclient.remove_container(container, force=True)


def test_docker_py_exec_detach_keeps_the_process(dclient):
    container = dclient.create_container("busybox", "cat", stdin_open=True)
    dclient.start(container)
    exec_id = dclient.exec_create(container, ["sh", "-c", "cat; echo done > /tmp/exec-ended"],
                                  stdin=True, tty=True, stdout=True)
    sock = raw_socket(dclient.exec_start(exec_id, tty=True, socket=True))
    sock.sendall(CTRL_P)
    sock.sendall(CTRL_Q)
    assert closed_by_daemon(sock)
    sock.close()
    assert dclient.exec_inspect(exec_id)["Running"]  # detached, not killed
    dclient._general_configs["detachKeys"] = "ctrl-x"
    try:
        exec_id = dclient.exec_create(container, "cat", stdin=True, tty=True, stdout=True)
    finally:
        del dclient._general_configs["detachKeys"]
    sock = raw_socket(dclient.exec_start(exec_id, tty=True, socket=True))
    sock.sendall(CTRL_X)
    assert closed_by_daemon(sock)
    sock.close()
    import docker

    with pytest.raises(docker.errors.APIError) as info:
        dclient.exec_create(container, "cat", detach_keys="ctrl-1")
    assert "Invalid escape keys (ctrl-1) provided" in str(info.value)
    dclient.remove_container(container, force=True)


def test_docker_py_exec_tty_non_stream_and_demux_forms(dclient):
    container = dclient.create_container("busybox", "cat", stdin_open=True)
    dclient.start(container)
    cmd = ["sh", "-c", "echo hello out; echo hello err >&2"]
    try:
        # The process has a TTY (exec_create tty=True) whatever exec_start's own tty says:
        # with tty=False at start the TTY's output comes as stdout frames.
        assert dclient.exec_start(dclient.exec_create(container, cmd, tty=True)) == b"hello out\r\nhello err\r\n"
        assert dclient.exec_start(dclient.exec_create(container, cmd, tty=True), demux=True) == \
            (b"hello out\r\nhello err\r\n", None)
        assert dclient.exec_start(dclient.exec_create(container, cmd, tty=True), tty=True) == \
            b"hello out\r\nhello err\r\n"
        streamed = b"".join(dclient.exec_start(dclient.exec_create(container, cmd, tty=True), stream=True))
        assert streamed == b"hello out\r\nhello err\r\n"
        demuxed = list(dclient.exec_start(dclient.exec_create(container, cmd, tty=True), stream=True, demux=True))
        assert b"".join(out for out, err in demuxed) == b"hello out\r\nhello err\r\n"
        assert all(err is None for _, err in demuxed)
        # Without a TTY: separate streams.
        assert dclient.exec_start(dclient.exec_create(container, cmd), demux=True) == (b"hello out\n", b"hello err\n")
        # A command that cannot start: exit code 126, as dockerd.
        failed = dclient.exec_create(container, "no-such-command")
        dclient.exec_start(failed)
        assert dclient.exec_inspect(failed)["ExitCode"] == 126
    finally:
        dclient.remove_container(container, force=True)


def attach_and_type(env, name, keys) -> int:
    """`docker attach` on a pty; once the daemon reports the attach, type `keys` one by one
    (a user's key presses); the CLI's exit code."""
    master, slave = pty.openpty()
    since = str(time.time() - 1)
    process = subprocess.Popen([DOCKER, "attach", name], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    try:
        def attached():
            out = subprocess.run([DOCKER, "events", "--since", since, "--until", str(time.time()), "--filter",
                                  f"container={name}", "--filter", "event=attach", "--format", "{{.Action}}"],
                                 env=env, capture_output=True, text=True, timeout=60).stdout
            return "attach" in out

        wait_for(attached, what="docker attach attached")
        for key in keys:
            os.write(master, key)
            time.sleep(0.2)  # separate key presses (not synchronisation: nothing waits on it)
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_docker_cli_detach_keys_on_run_exec_and_attach(daemon):
    env = daemon.env()
    name = "pe-detach"
    try:
        output, code = run_in_pty([DOCKER, "run", "-it", "--name", name, "--detach-keys", "ctrl-x", "busybox",
                                   "sh", "-c", "echo ready; cat"], env, typed=CTRL_X)
        assert code == 0 and b"ready" in output

        def inspect(fmt):
            return subprocess.run([DOCKER, "inspect", "-f", fmt, name], env=env, capture_output=True,
                                  text=True, timeout=60).stdout.strip()

        assert inspect("{{.State.Running}}") == "true"
        # The default keys. (`docker attach` reports "read escape sequence" with status 1.)
        code = attach_and_type(env, name, [b"x", CTRL_P, CTRL_Q])
        assert code in (0, 1) and inspect("{{.State.Running}}") == "true"
        output, code = run_in_pty([DOCKER, "exec", "-it", "--detach-keys", "ctrl-x", name, "sh", "-c",
                                   "echo in-exec; cat"], env, typed=CTRL_X)
        assert code in (0, 1) and b"in-exec" in output, output
        assert code == 0 or b"read escape sequence" in output, output
        assert inspect("{{.State.Running}}") == "true"
        bad = subprocess.run([DOCKER, "attach", "--no-stdin", "--detach-keys", "ctrl-1", name], env=env, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert bad.returncode != 0 and "received 400" in bad.stderr  # the CLI's words for a refused hijack
    finally:
        subprocess.run([DOCKER, "rm", "-f", name], env=env, capture_output=True, timeout=60)


def test_pyengine_cli_detach_keys_flag_and_config_file(daemon, tmp_path):
    import json as jsonlib
    import sys

    (tmp_path / "config.json").write_text(jsonlib.dumps({"detachKeys": "ctrl-x"}))
    env = {**daemon.env(), "PYENGINE_CONFIG": str(tmp_path)}
    pyengine = [sys.executable, "-m", "engine.cli"]
    name = "pe-cli-detach"

    def running() -> bool:
        r = daemon.api("GET", f"/containers/{name}/json")
        return r.status_code == 200 and r.json()["State"]["Running"]

    try:
        # The config file's detachKeys (ctrl-x) is the default...
        output, code = run_in_pty([*pyengine, "run", "-it", "--name", name, "busybox", "sh", "-c",
                                   "echo ready; cat"], env, typed=CTRL_X)
        assert code == 0 and b"ready" in output and running()
        # ...and --detach-keys overrides it (both keys typed at once are still seen).
        output, code = run_in_pty([*pyengine, "exec", "-it", "--detach-keys", "ctrl-p,ctrl-q", name, "sh", "-c",
                                   "echo in-exec; cat"], env, typed=CTRL_P + CTRL_Q)
        assert code == 0 and b"in-exec" in output and running()
        bad = subprocess.run([*pyengine, "run", "--rm", "--detach-keys", "ctrl-1", "busybox", "true"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 125 and "Invalid detach keys (ctrl-1) provided" in bad.stderr
    finally:
        subprocess.run([*pyengine, "rm", "-f", name], env=env, capture_output=True, timeout=60)
