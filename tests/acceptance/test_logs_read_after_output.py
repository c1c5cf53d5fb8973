"""`docker logs` holds every line the container wrote before the request: after `docker wait`
returned (the exit is reported only once the output up to it is logged), and while it runs
(a logs request first has the output the spawner holds logged). docker-py's own suite reads
logs right after start and after wait (api_build_test's `ls -a`, run_container)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.acceptance]


def lines(data: bytes) -> list[bytes]:
    return data.replace(b"\r\n", b"\n").splitlines()


def test_logs_after_wait_hold_every_line(dclient):
    for i in range(50):
        ctr = dclient.create_container("busybox", ["sh", "-c", "seq 1 2000; echo err >&2"])
        try:
            dclient.start(ctr)
            assert dclient.wait(ctr, timeout=60)["StatusCode"] == 0
            out = dclient.logs(ctr, stdout=True, stderr=False)
            err = dclient.logs(ctr, stdout=False, stderr=True)
            assert (len(lines(out)), lines(out)[-1:], err) == (2000, [b"2000"], b"err\n"), f"run {i}"
        finally:
            dclient.remove_container(ctr, force=True)


def test_logs_of_a_running_container_hold_what_it_wrote(dclient, tmp_path):
    """Each line is in the logs requested as soon as the container has written it: the
    container echoes a line on stdout for each line on its stdin, then writes its number to a
    file bound from the host, which the test watches directly (no daemon in between)."""
    script = "i=0; while read x; do i=$((i+1)); echo line$i; echo $i > /h/n.new; mv /h/n.new /h/n; done"
    ctr = dclient.create_container("busybox", ["sh", "-c", script], stdin_open=True, volumes=["/h"],
                                   host_config=dclient.create_host_config(binds=[f"{tmp_path}:/h"]))
    stdin = None
    try:
        dclient.start(ctr)
        stdin = dclient.attach_socket(ctr, params={"stdin": 1, "stream": 1})
        for i in range(1, 201):
            stdin._sock.sendall(b"\n")
            deadline = time.monotonic() + 60
            while _read(tmp_path / "n") != str(i):  # the container wrote line<i> before this
                assert time.monotonic() < deadline, f"line {i} never written"
                time.sleep(0.0005)
            assert dclient.logs(ctr, tail=1) == f"line{i}\n".encode()
    finally:
        if stdin is not None:
            stdin.close()
        dclient.remove_container(ctr, force=True)


def _read(path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
