"""Live restore: containers are children of the spawner process, not of pyengined. A daemon
killed (-9) under concurrent create/start/stop load, or stopped with live restore, is
restarted and re-adopts every running container (same pid, no log line lost, published
ports, DNS, exec, logs, stop); those that exited meanwhile have their exit codes; nothing
half-made is left on the host."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import docker
import pytest

from engine.daemon import parse_args
from engine.networks.manager import daemon_tag
from engine.runtime import cgroups
from engine.runtime.spill import spill_path
from tests.conftest import _mounts_under, needs_root, private_daemon, wait_for

pytestmark = needs_root

LOGGER = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.02; done"


@pytest.fixture
def lrd():
    with private_daemon("pe-live-") as handle:
        yield handle


def client_for(handle):
    return docker.APIClient(base_url=handle.host, version="1.41", timeout=60)


def host_state(handle) -> dict:
    """What a daemon puts on the host: mounts, cgroups, veths, nft rules."""
    parent = parse_args(["--data-root", handle.data_root]).cgroup_parent
    groups = set()
    for d in cgroups.for_container(parent, "probe").parent_dirs():
        if os.path.isdir(d):
            groups.update(e.name for e in os.scandir(d) if e.is_dir())
    tag = daemon_tag(handle.data_root)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    veths = {ln.split(":")[1].strip().split("@")[0] for ln in links.splitlines() if f"pv{tag}" in ln}
    nft = subprocess.run(["nft", "list", "table", "ip", f"pyengine_{tag}"], capture_output=True, text=True).stdout
    rules = sorted(ln.strip() for ln in nft.splitlines() if "dnat" in ln)
    return {"mounts": sorted(_mounts_under(handle.root)), "cgroups": groups, "veths": veths, "dnat": rules}


def spill_size(handle, container_id: str, pid: int) -> int:
    """Bytes the spawner has taken from a container's output into its spill file."""
    path = spill_path(os.path.join(handle.data_root, "containers", container_id), pid)
    return os.path.getsize(path) if os.path.exists(path) else 0


def line_numbers(client, name) -> list[int]:
    out = client.logs(name, stdout=True, stderr=False).decode()
    return [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("line ")]


def assert_no_gap(numbers: list[int]) -> None:
    """Every line once, in order, though the daemon was killed while logging them."""
    assert numbers and numbers[0] == 0, numbers[:5]
    missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
    assert not missing, f"log lines missing: {missing}"
    assert numbers == list(range(len(numbers))), "log lines repeated or out of order"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int) -> bytes:
    return wait_for(lambda: _try_get(port), what=f"http on 127.0.0.1:{port}")


def _try_get(port: int):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
    except OSError:
        return None


def test_kill9_under_load_readopts_everything(lrd):
    before = host_state(lrd)
    client = client_for(lrd)
    client.create_network("livenet")
    loggers, logger_ids = [], {}
    for i in range(3):
        c = client.create_container("busybox", ["sh", "-c", LOGGER], name=f"logger{i}")
        client.start(c)
        loggers.append(f"logger{i}")
        logger_ids[f"logger{i}"] = c["Id"]
    port = free_port()
    web = client.create_container(
        "busybox", ["sh", "-c", "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www"],
        name="web", ports=[80], networking_config=client.create_networking_config({"livenet": client.create_endpoint_config()}),
        host_config=client.create_host_config(port_bindings={80: ("127.0.0.1", port)}, network_mode="livenet"))
    client.start(web)
    assert http_get(port) == b"served\n"
    short = client.create_container("busybox", ["sh", "-c", "sleep 3; echo bye; exit 7"], name="short")
    client.start(short)
    pids = {name: client.inspect_container(name)["State"]["Pid"] for name in loggers + ["web", "short"]}

    # 20 clients creating, starting, stopping and removing containers while the daemon dies.
    stop = threading.Event()
    started = []  # one entry per churn container started (list.append is atomic)

    def churn(n: int) -> None:
        c = client_for(lrd)
        while not stop.is_set():
            try:
                cid = c.create_container("busybox", ["sleep", "60"], name=f"churn{n}-{time.monotonic_ns()}")["Id"]
                c.start(cid)
                started.append(cid)
                c.stop(cid, timeout=0)
                c.remove_container(cid)
            except Exception:
                time.sleep(0.05)

    threads = [threading.Thread(target=churn, args=(n,), daemon=True) for n in range(20)]
    for t in threads:
        t.start()
    # Kill once every client is in full swing: at least two starts per client so far.
    wait_for(lambda: len(started) >= 40, what="the churn to be under way")
    lrd.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    wait_for(lambda: not os.path.exists(f"/proc/{pids['short']}"), what="short to exit while the daemon is away")
    # The loggers write on while no daemon reads: wait until each one's spill has grown.
    spilled = {name: spill_size(lrd, logger_ids[name], pids[name]) for name in loggers}
    wait_for(lambda: all(spill_size(lrd, logger_ids[n], pids[n]) > spilled[n] + 100 for n in loggers),
             what="the loggers to write while no daemon reads")
    lrd.start()
    client = client_for(lrd)

    for name in loggers + ["web"]:
        state = client.inspect_container(name)["State"]
        assert state["Status"] == "running" and state["Pid"] == pids[name], (name, state)
    short_state = client.inspect_container("short")["State"]
    assert short_state["Status"] == "exited" and short_state["ExitCode"] == 7, short_state
    assert client.logs("short") == b"bye\n"  # written while no daemon read it
    # Host state right after recovery: exactly the running containers' cgroups and rootfs mounts
    # (churn containers whose start had completed when the daemon died run on too).
    running = {c["Id"] for c in client.containers()}
    assert running >= {client.inspect_container(n)["Id"] for n in loggers + ["web"]}
    for cid in running:
        assert client.inspect_container(cid)["State"]["Pid"] > 0
    now = host_state(lrd)
    assert now["cgroups"] == before["cgroups"] | running
    assert sorted(m for m in now["mounts"] if m.endswith("/merged")) == sorted(
        m for m in now["mounts"] if m.endswith("/merged") and any(cid in m for cid in running))
    assert len([m for m in now["mounts"] if m.endswith("/merged")]) == len(running)

    # Every line written while the daemon was away is in the log, and the log goes on.
    for name in loggers:
        first = line_numbers(client, name)
        wait_for(lambda: len(line_numbers(client, name)) > len(first) + 5, what=f"{name} to log on")
        assert_no_gap(line_numbers(client, name))
    # Published port and DNS of the re-adopted web server; exec into it.
    assert http_get(port) == b"served\n"
    probe = client.create_container("busybox", ["wget", "-q", "-O", "-", "http://web/"],
                                    host_config=client.create_host_config(network_mode="livenet"))
    client.start(probe)
    assert client.wait(probe)["StatusCode"] == 0
    assert client.logs(probe) == b"served\n"
    exe = client.exec_create("web", ["cat", "/www/index.html"])
    assert client.exec_start(exe) == b"served\n"
    # Stop works on an adopted container, with its real exit code.
    client.stop("logger0", timeout=1)
    assert client.inspect_container("logger0")["State"]["ExitCode"] == 137

    for c in client.containers(all=True):
        client.remove_container(c["Id"], force=True)
    client.remove_network("livenet")
    # Stopped containers' veths go with their namespaces, or are reaped a moment later.
    wait_for(lambda: host_state(lrd) == before, what="the host state from before")


def test_graceful_stop_keeps_containers_and_docker_cli_works(lrd):
    client = client_for(lrd)
    client.start(client.create_container("busybox", ["sh", "-c", LOGGER], name="talker"))
    client.start(client.create_container("busybox", ["sh", "-c", "while true; do echo tty-line; sleep 0.05; done"],
                                         name="tty", tty=True))
    pid = client.inspect_container("talker")["State"]["Pid"]
    lrd.stop()  # SIGTERM: live restore is the default
    assert os.path.exists(f"/proc/{pid}") and lrd.spawner_pid() is not None
    lrd.start()
    env = lrd.env()

    def docker_cli(*args):
        result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    assert docker_cli("inspect", "-f", "{{.State.Pid}}", "talker").strip() == str(pid)
    assert docker_cli("exec", "talker", "echo", "inside").strip() == "inside"
    wait_for(lambda: docker_cli("logs", "tty").count("tty-line") > 3, what="tty output after restart")
    logs = docker_cli("logs", "talker")
    assert_no_gap([int(ln.split()[1]) for ln in logs.splitlines()])
    docker_cli("stop", "-t", "1", "talker", "tty")
    assert docker_cli("inspect", "-f", "{{.State.Status}}", "talker").strip() == "exited"
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"

    # Without live restore a graceful stop stops containers, and the spawner goes too.
    docker_cli("start", "talker")
    lrd.stop()
    lrd.extra_args = ["--no-live-restore"]
    lrd.start()
    pid = client_for(lrd).inspect_container("talker")["State"]["Pid"]
    lrd.stop()
    assert lrd.spawner_pid() is None
    assert not os.path.exists(f"/proc/{pid}")
    assert _mounts_under(lrd.root) == []


def test_in_daemon_spawn_fallback():
    """--no-spawner (or a missing pe-spawner binary): containers are cloned by the daemon."""
    with private_daemon("pe-nospawn-", prepare=lambda h: h.extra_args.append("--no-spawner")) as handle:
        client = client_for(handle)
        c = client.create_container("busybox", ["sh", "-c", "echo out; echo err >&2; exit 5"])
        client.start(c)
        assert client.wait(c)["StatusCode"] == 5
        assert client.logs(c) == b"out\nerr\n" or sorted(client.logs(c).split()) == [b"err", b"out"]
        exe = client.create_container("busybox", ["sleep", "30"])
        client.start(exe)
        assert client.exec_start(client.exec_create(exe, ["echo", "hi"])) == b"hi\n"
        client.remove_container(exe, force=True)
        assert handle.spawner_pid() is None


def _start_other_build_spawner(handle, tmp_path) -> int:
    """A copy of pe-spawner (another inode: what an upgrade leaves running) on the data root."""
    from engine.runtime.spawner import binary_path

    other = tmp_path / "pe-spawner-other-build"
    shutil.copy2(binary_path(), other)
    os.makedirs(handle.data_root, exist_ok=True)
    subprocess.run([str(other), os.path.join(handle.data_root, "spawner.sock")], check=True, timeout=30)
    pid = handle.spawner_pid()
    assert pid is not None and os.readlink(f"/proc/{pid}/exe") == str(other)
    return pid


def test_a_spawner_of_another_build_without_containers_is_replaced(tmp_path):
    started = {}
    with private_daemon("pe-oldspawn-", prepare=lambda h: started.setdefault("pid", _start_other_build_spawner(h, tmp_path))) as handle:
        status = open(f"/proc/{started['pid']}/status").read() if os.path.exists(f"/proc/{started['pid']}") else ""
        assert "State:\tZ" in status or not status, (status, handle.log())
        client = client_for(handle)
        c = client.create_container("busybox", ["echo", "new"])
        client.start(c)
        assert client.wait(c)["StatusCode"] == 0 and client.logs(c) == b"new\n"
        assert os.readlink(f"/proc/{handle.spawner_pid()}/exe").endswith("/engine/pe-spawner")


async def test_a_spawner_of_another_build_with_processes_is_left_alone():
    """It refuses (the daemon does not start) rather than kill containers or drive a spawner
    that may speak another protocol. A shell with a child stands in for such a spawner."""
    from engine.errors import SystemError_
    from engine.runtime.spawner import retire_other_build, same_build

    holder = subprocess.Popen(["sh", "-c", "sleep 1000 & wait"])
    try:
        wait_for(lambda: open(f"/proc/{holder.pid}/task/{holder.pid}/children").read().strip(), 30, "a child")
        assert not same_build(holder.pid)
        with pytest.raises(SystemError_, match="another pyengine build .* still runs 1 container process"):
            await retire_other_build(holder.pid)
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["pkill", "-f", "^sleep 1000$"], check=False)
