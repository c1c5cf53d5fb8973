"""The `pyengine` CLI end to end against a private pyengined (the issue's user story)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time

import pytest

from tests.conftest import needs_root

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
    time.sleep(0.6)
    logs = pe("logs", "--tail", "2", "-t", "pe-story", check=True).stdout.decode().splitlines()
    assert len(logs) == 2 and logs[0].endswith(" tick") and logs[0][:4].isdigit()
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
    follower = subprocess.Popen([sys.executable, "-m", "engine.cli", "-H", daemon.host, "events", "--follow",
                                 "--filter", "container=pe-follow"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # let the websocket subscribe
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
