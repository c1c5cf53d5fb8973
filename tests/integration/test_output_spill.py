"""Container output while no daemon runs: pe-spawner reads it into a spill file per run, so a
container writing megabytes while pyengined is dead (kill -9) never blocks, and the next
daemon logs every line exactly once, in order, stdout and stderr apart, with the time each
was written — even when that daemon is killed too in the middle of logging it."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import tempfile
import threading
import time
from datetime import datetime, timezone

import docker
import pytest

from tests.conftest import needs_root, private_daemon, wait_for

pytestmark = needs_root

LINES = 50_000  # ~3 MiB of output, ~2.9 MiB of it while the daemon is dead
PAD = "x" * 48
LAST = f"line {LINES - 1} {PAD}".encode()
# 1000 lines, then wait for /data/go (the daemon is dead by then), then the rest; a counter
# in the volume shows how far it got.
WRITER = f"""
i=0
while [ $i -lt {LINES} ]; do
  echo "line $i {PAD}"
  if [ $((i % 1000)) -eq 0 ]; then echo "err $i" >&2; echo $i > /data/count; fi
  if [ $i -eq 1000 ]; then while [ ! -e /data/go ]; do sleep 0.05; done; fi
  i=$((i+1))
done
echo done > /data/count
exec sleep 3600
"""


@pytest.fixture
def spd():
    with private_daemon("pe-spill-") as handle:
        yield handle


@pytest.fixture
def volume():
    path = tempfile.mkdtemp(prefix="pe-spill-vol-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def client_for(handle):
    return docker.APIClient(base_url=handle.host, version="1.41", timeout=120)


def read_count(volume: str) -> str:
    try:
        with open(os.path.join(volume, "count")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def timed_lines(client, cid, **streams) -> list[tuple[float, str]]:
    out = client.logs(cid, timestamps=True, **streams).decode()
    result = []
    for line in out.splitlines():
        stamp, _, text = line.partition(" ")
        when = datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
        result.append((when, text.rstrip("\r")))
    return result


def spill_files(handle, cid) -> list[str]:
    return glob.glob(os.path.join(handle.data_root, "containers", cid, "output.*"))


def size_of(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def kill_when_logging(handle, log_path: str, base: int, killed: list) -> None:
    """Kill -9 the daemon as soon as it has logged part of what was spilled."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        process = handle.process
        if process is not None and process.poll() is None and size_of(log_path) > base:
            process.send_signal(signal.SIGKILL)
            killed.append(size_of(log_path))
            return
        time.sleep(0.001)


def run_writer_through_a_dead_daemon(handle, volume, tty: bool):
    """Start the writer, kill -9 the daemon, let it write ~3 MiB, restart the daemon."""
    client = client_for(handle)
    cid = client.create_container("busybox", ["sh", "-c", WRITER], tty=tty,
                                  host_config=client.create_host_config(binds={volume: {"bind": "/data"}}))["Id"]
    client.start(cid)
    pid = client.inspect_container(cid)["State"]["Pid"]
    wait_for(lambda: read_count(volume) == "1000", what="the first 1000 lines")
    handle.stop(signal.SIGKILL)
    open(os.path.join(volume, "go"), "w").close()
    # The container writes on with no daemon: 49,000 lines, far more than its pipe holds.
    wait_for(lambda: read_count(volume) == "done", timeout=120, what="the writer to finish without a daemon")
    assert os.path.exists(f"/proc/{pid}")
    return client, cid


def assert_every_line_once(client, cid, before: float, tty: bool) -> None:
    out = timed_lines(client, cid, stdout=True, stderr=tty)
    lines = [(when, text) for when, text in out if text.startswith("line ")]
    numbers = [int(text.split()[1]) for _, text in lines]
    assert numbers == list(range(LINES)), (
        f"{len(numbers)} lines; missing {sorted(set(range(LINES)) - set(numbers))[:5]}, "
        f"repeated {len(numbers) - len(set(numbers))}")
    assert all(text.endswith(PAD) for _, text in lines)
    stamps = [when for when, _ in lines]
    assert stamps == sorted(stamps)
    assert stamps[-1] < before, "logged with the time it was logged, not written"
    errors = [int(text.split()[1]) for _, text in out if text.startswith("err ")] if tty else \
        [int(text.split()[1]) for _, text in timed_lines(client, cid, stdout=False, stderr=True)]
    assert errors == list(range(0, LINES, 1000))
    if not tty:
        assert not any(text.startswith("err ") for _, text in out)


def test_output_written_while_the_daemon_is_dead_is_logged_once(spd, volume):
    client, cid = run_writer_through_a_dead_daemon(spd, volume, tty=False)
    log_path = os.path.join(spd.data_root, "containers", cid, f"{cid}-json.log")
    base = size_of(log_path)
    restarted_at = time.time()

    # A daemon killed -9 in the middle of logging the spill: nothing lost, nothing twice.
    killed: list[int] = []
    killer = threading.Thread(target=kill_when_logging, args=(spd, log_path, base, killed), daemon=True)
    killer.start()
    try:
        spd.start()
    except RuntimeError:
        pass  # killed before it listened
    killer.join(timeout=150)
    assert killed, "the second daemon was not caught logging"
    spd.stop(signal.SIGKILL)
    spd.start()
    client = client_for(spd)
    wait_for(lambda: LAST in client.logs(cid, tail=3), timeout=120, what="the last line in the log")
    assert_every_line_once(client, cid, restarted_at, tty=False)
    assert killed[0] < size_of(log_path), "the second daemon had logged everything already"
    # It is still the same running container, and its output goes on being logged.
    assert client.inspect_container(cid)["State"]["Running"]
    exe = client.exec_create(cid, ["sh", "-c", "echo after > /proc/1/fd/1"])
    client.exec_start(exe)
    wait_for(lambda: client.logs(cid, tail=1) == b"after\n", what="output after the restart")
    client.stop(cid, timeout=1)
    assert spill_files(spd, cid) == []
    client.remove_container(cid)


def test_tty_output_written_while_the_daemon_is_dead_is_logged_once(spd, volume):
    client, cid = run_writer_through_a_dead_daemon(spd, volume, tty=True)
    restarted_at = time.time()
    spd.start()
    client = client_for(spd)
    wait_for(lambda: LAST in client.logs(cid, tail=3), timeout=120, what="the last line in the log")
    assert_every_line_once(client, cid, restarted_at, tty=True)
    client.stop(cid, timeout=1)
    assert spill_files(spd, cid) == []
    client.remove_container(cid)


def test_streams_that_end_before_a_byte_make_no_spill_file(spd):
    """A run whose stdout and stderr both end before it wrote a byte has no spill file, and
    its output is over for the daemon (and for a daemon started after a kill -9 while it
    runs on); when one stream ends quietly and the other writes later, the file gets the
    quiet stream's end record too, so that a reader sees both ends."""
    from engine.runtime.spill import HEADER, read_records

    client = client_for(spd)
    quiet = client.create_container("busybox", ["sh", "-c", "exec >&- 2>&-; exec sleep 1000"])["Id"]
    client.start(quiet)
    late = client.create_container("busybox", ["sh", "-c", "exec >&-; echo late >&2; exec 2>&- sleep 1000"])["Id"]
    client.start(late)

    def ends(cid) -> set[int]:
        found = set()
        for path in spill_files(spd, cid):
            if path.endswith(".spill"):
                fd = os.open(path, os.O_RDONLY)
                try:
                    found |= {r.stream for r in read_records(fd, HEADER)[0] if not r.data}
                finally:
                    os.close(fd)
        return found

    wait_for(lambda: ends(late) == {1, 2}, what="both end records in the late writer's spill")
    assert client.logs(late, stdout=False, stderr=True) == b"late\n"
    assert client.logs(late, stdout=True, stderr=False) == b""
    assert [p for p in spill_files(spd, quiet) if p.endswith(".spill")] == []
    assert client.logs(quiet) == b""

    spd.stop(signal.SIGKILL)
    spd.start()
    client = client_for(spd)
    assert client.inspect_container(quiet)["State"]["Running"]
    assert client.logs(quiet) == b"" and client.logs(late) == b"late\n"
    for cid in (quiet, late):
        client.kill(cid)
        assert client.wait(cid, timeout=30)["StatusCode"] == 137
        assert spill_files(spd, cid) == []
        client.remove_container(cid)


def test_output_ends_handed_over_with_the_spawn_are_logged_and_never_leaked(spd):
    """The output pipes travel with the spawn (no tty): output written at exec is logged, and
    the spawner holds no descriptor of a run once it is removed, nor of a start whose exec
    failed (Docker's exit 127) — after a daemon kill -9 too."""
    client = client_for(spd)
    with open(os.path.join(spd.data_root, "spawner.sock.pid")) as f:
        spawner = int(f.read().strip())

    def fds() -> int:
        return len(os.listdir(f"/proc/{spawner}/fd"))

    baseline = fds()
    for _ in range(3):
        bad = client.create_container("busybox", ["/no/such/binary"])["Id"]
        with pytest.raises(docker.errors.APIError, match="no such file or directory"):
            client.start(bad)
        client.remove_container(bad)
    cid = client.create_container("busybox", ["sh", "-c", "echo out; echo err >&2"])["Id"]
    client.start(cid)
    assert client.wait(cid, timeout=30)["StatusCode"] == 0
    assert client.logs(cid, stdout=True, stderr=False) == b"out\n"
    assert client.logs(cid, stdout=False, stderr=True) == b"err\n"
    client.remove_container(cid)
    wait_for(lambda: fds() == baseline, what="the spawner to hold no more fds than before")

    sleeper = client.create_container("busybox", ["sh", "-c", "echo up; exec sleep 1000"])["Id"]
    client.start(sleeper)
    spd.stop(signal.SIGKILL)
    spd.start()
    client = client_for(spd)
    wait_for(lambda: client.logs(sleeper) == b"up\n", what="the adopted run's output")
    client.remove_container(sleeper, force=True)
    wait_for(lambda: fds() == baseline, what="the spawner to let the adopted run's fds go")


def test_the_output_pipes_the_spawner_makes_have_room_while_no_daemon_reads(spd):
    """The spawner makes a run's stdout and stderr pipes itself (no tty): the child writes to
    them, and with live restore they are enlarged to 1 MiB, as the daemon's own were."""
    import fcntl

    client = client_for(spd)
    cid = client.create_container("busybox", ["sh", "-c", "echo up; exec sleep 1000"])["Id"]
    client.start(cid)
    wait_for(lambda: client.logs(cid) == b"up\n", what="the run's output")
    pid = client.inspect_container(cid)["State"]["Pid"]
    for n in (1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{n}").startswith("pipe:")
        fd = os.open(f"/proc/{pid}/fd/{n}", os.O_WRONLY | os.O_NONBLOCK)  # the same pipe; nothing written
        try:
            assert fcntl.fcntl(fd, 1032) == 1 << 20  # F_GETPIPE_SZ
        finally:
            os.close(fd)
    client.remove_container(cid, force=True)
