"""Real cgroups, as root: limits, placement, freeze, OOM, pids, stats, destroy."""

import os
import secrets
import signal
import subprocess
import sys

import pytest

from engine.errors import InvalidParameter
from engine.runtime.cgroups import Resources, cleanup_stale, detect_mode, for_container
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for real cgroups")

MODE = detect_mode()


def new_id() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def parent():
    name = f"pyengine-test-{secrets.token_hex(4)}"
    yield name
    cleanup_stale(name, [])
    for d in for_container(name, "x").parent_dirs():
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        # The child blocks on stdin until it has been placed in the cgroup.
        p = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.readline()\n" + code],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


def go(p: subprocess.Popen) -> None:
    p.stdin.write(b"\n")
    p.stdin.flush()


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def limit_file(m, controller: str, v1_name: str, v2_name: str) -> str:
    if MODE == "v1":
        return os.path.join(m.path(controller), v1_name)
    return os.path.join(m.path(), v2_name)


def test_create_limits_and_destroy(parent, procs):
    m = for_container(parent, new_id())
    warnings = m.create(Resources(memory=64 << 20, nano_cpus=500_000_000, pids_limit=50, cpu_shares=512))
    assert isinstance(warnings, list)
    p = procs("import time; time.sleep(60)")
    m.add_process(p.pid)
    assert p.pid in m.pids()
    if MODE == "v1":
        assert read(limit_file(m, "memory", "memory.limit_in_bytes", "")) == "67108864"
        memsw = os.path.join(m.path("memory"), "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            assert read(memsw) == str(2 * 67108864)
        assert read(os.path.join(m.path("cpu"), "cpu.cfs_quota_us")) == "50000"
        assert read(os.path.join(m.path("cpu"), "cpu.cfs_period_us")) == "100000"
        assert read(os.path.join(m.path("cpu"), "cpu.shares")) == "512"
        assert read(os.path.join(m.path("pids"), "pids.max")) == "50"
        devices = read(os.path.join(m.path("devices"), "devices.list")).splitlines()
        assert "c 1:3 rwm" in devices and "c 136:* rwm" in devices and "b *:* m" in devices
        assert "a *:* rwm" not in devices
        # cpuset inherited from the parent, else the add_process above would have failed
        assert read(os.path.join(m.path("cpuset"), "cpuset.cpus"))
        # every hierarchy has the process
        for d in m.dirs():
            assert str(p.pid) in read(os.path.join(d, "cgroup.procs")).split()
    else:
        assert read(os.path.join(m.path(), "memory.max")) == "67108864"
        assert read(os.path.join(m.path(), "cpu.max")) == "50000 100000"
        assert read(os.path.join(m.path(), "pids.max")) == "50"
    m.destroy()
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert not any(os.path.exists(d) for d in m.dirs())
    m.destroy()  # idempotent


@pytest.mark.skipif(MODE != "v1", reason="cpuset inheritance is v1's")
def test_v1_cpuset_of_parents_we_make_and_of_a_parent_someone_made(parent):
    """A parent the manager creates gets clone_children (the kernel copies cpus/mems into each
    container's cgroup at mkdir); a parent someone else made is left as it is, and a
    container under it still gets the parent's cpus/mems (copied by the manager)."""
    first, second = for_container(parent, new_id()), for_container(parent, new_id())
    first.create(Resources())
    second.create(Resources())
    made_parent = os.path.dirname(first.path("cpuset"))
    assert read(os.path.join(made_parent, "cgroup.clone_children")) == "1"
    for m in (first, second):
        for name in ("cpuset.cpus", "cpuset.mems"):
            assert read(os.path.join(m.path("cpuset"), name)) == read(os.path.join(made_parent, name))
        m.destroy()

    theirs = os.path.join(os.path.dirname(made_parent), f"{parent}-theirs")
    os.mkdir(theirs)
    try:
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(os.path.join(theirs, name), "w") as f:
                f.write(read(os.path.join(made_parent, name)))
        m = for_container(f"{parent}-theirs", new_id())
        m.create(Resources())
        assert read(os.path.join(theirs, "cgroup.clone_children")) == "0"
        assert read(os.path.join(m.path("cpuset"), "cpuset.cpus")) == read(os.path.join(theirs, "cpuset.cpus"))
        m.destroy()
    finally:
        cleanup_stale(f"{parent}-theirs", [])
        for d in for_container(f"{parent}-theirs", "x").parent_dirs():
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass


def test_update(parent, procs):
    m = for_container(parent, new_id())
    m.create(Resources(memory=64 << 20))
    m.update(Resources(memory=128 << 20, pids_limit=7))
    assert read(limit_file(m, "memory", "memory.limit_in_bytes", "memory.max")) == str(128 << 20)
    assert read(limit_file(m, "pids", "pids.max", "pids.max")) == "7"
    m.update(Resources(memory=32 << 20))  # shrinking works too (memsw ordering)
    assert read(limit_file(m, "memory", "memory.limit_in_bytes", "memory.max")) == str(32 << 20)
    m.update(Resources(pids_limit=0))
    assert read(limit_file(m, "pids", "pids.max", "pids.max")) == "max"
    m.destroy()


def test_create_is_all_or_nothing(parent):
    m = for_container(parent, new_id())
    with pytest.raises(InvalidParameter) as info:
        m.create(Resources(cpuset_cpus="0-999"))
    assert "cpuset.cpus" in str(info.value) and info.value.path.endswith("cpuset.cpus")
    assert not any(os.path.exists(d) for d in m.dirs())


def test_freeze_thaw(parent, procs):
    m = for_container(parent, new_id())
    m.create(Resources())
    p = procs("import time\nwhile True: time.sleep(0.01)")
    m.add_process(p.pid)
    go(p)
    assert not m.is_frozen()
    m.freeze()
    assert m.is_frozen()
    if MODE == "v1":
        assert read(os.path.join(m.path("freezer"), "freezer.state")) == "FROZEN"
    m.thaw()
    assert not m.is_frozen()
    assert p.poll() is None
    m.freeze()
    m.destroy()  # destroying a frozen cgroup kills and removes it
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert not any(os.path.exists(d) for d in m.dirs())


def test_oom_kill(parent, procs):
    m = for_container(parent, new_id())
    m.create(Resources(memory=16 << 20))
    assert m.oom_kill_count() == 0
    p = procs("b = bytearray(200 * 1024 * 1024)\nprint('survived')")
    m.add_process(p.pid)
    go(p)
    assert p.wait(timeout=30) == -signal.SIGKILL
    assert m.oom_kill_count() >= 1
    m.destroy()


def test_pids_limit_refuses_forks(parent, procs):
    m = for_container(parent, new_id())
    m.create(Resources(pids_limit=4))
    p = procs(
        "import os, time\n"
        "n = 0\n"
        "while n < 20:\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except BlockingIOError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(60); os._exit(0)\n"
        "    n += 1\n"
        "print(n, flush=True)\n"
        "time.sleep(60)\n"
    )
    m.add_process(p.pid)
    go(p)
    line = p.stdout.readline()
    assert int(line) == 3  # 1 + 3 children = 4
    assert len(m.pids()) == 4
    st = m.stats().pids
    assert st.current == 4 and st.limit == 4
    killed = m.kill_all()
    assert sorted(killed) == sorted(m.pids()) or len(killed) == 4
    assert p.wait(timeout=5) == -signal.SIGKILL
    m.destroy()


def test_stats(parent, procs):
    m = for_container(parent, new_id())
    m.create(Resources(memory=64 << 20, pids_limit=10))
    p = procs("x = sum(range(3_000_000)); import time; time.sleep(60)")
    m.add_process(p.pid)
    go(p)
    # cpuacct.stat counts in clock ticks: wait until the loop's CPU time shows there
    s = wait_for(lambda: (st := m.stats()).cpu.kernel_ns + st.cpu.user_ns > 0 and st, what="CPU time charged")
    mem = s.memory
    assert mem.limit == 64 << 20
    assert mem.usage > 0 and isinstance(mem.stats, dict) and mem.stats
    cpu = s.cpu
    assert cpu.total_ns > 0 and cpu.kernel_ns + cpu.user_ns > 0
    if MODE == "v1":
        assert len(cpu.percpu_ns) >= 1
        assert mem.max_usage is not None and mem.failcnt is not None
    assert cpu.system_ns > 10**9 and cpu.online_cpus >= 1
    assert (s.pids.current, s.pids.limit) == (1, 10)
    m.destroy()


def test_cleanup_stale(parent, procs):
    keep, gone1, gone2 = new_id(), new_id(), new_id()
    for cid in (keep, gone1, gone2):
        for_container(parent, cid).create(Resources())
    p = procs("import time; time.sleep(60)")
    for_container(parent, gone1).add_process(p.pid)
    removed = cleanup_stale(parent, [keep])
    assert sorted(removed) == sorted([gone1, gone2])
    assert for_container(parent, keep).exists()
    assert not for_container(parent, gone1).exists()
    assert p.wait(timeout=5) == -signal.SIGKILL
    for_container(parent, keep).destroy()


def test_container_mounts(parent):
    pytest.importorskip("engine.runtime.spec")
    m = for_container(parent, new_id())
    mounts = m.container_mounts()
    if MODE == "v1":
        assert mounts[0].destination == "/sys/fs/cgroup" and mounts[0].type == "tmpfs"
        by_dest = {x.destination: x for x in mounts[1:]}
        assert by_dest["/sys/fs/cgroup/memory"].options[-1] == "memory"
        assert "ro" in by_dest["/sys/fs/cgroup/memory"].options
        assert all(x.type == "cgroup" for x in mounts[1:])
    else:
        assert [(x.destination, x.type) for x in mounts] == [("/sys/fs/cgroup", "cgroup2")]


# The device cgroup check comes first at open: EPERM is a refusal; anything else (success, or
# ENXIO from a driver that is not there) got past it.
_OPEN_PROBE = """
import os, sys
for path, flags in (("null", os.O_RDWR), ("kmsg", os.O_RDONLY), ("kmsg", os.O_WRONLY), ("mem", os.O_RDONLY)):
    try:
        os.close(os.open(os.path.join(sys.argv[1], path), flags))
        print(path, flags, "ok")
    except PermissionError:
        print(path, flags, "denied")
    except OSError:
        print(path, flags, "ok")
"""


def _device_nodes(tmp_path) -> str:
    for name, minor in (("null", 3), ("kmsg", 11), ("mem", 1)):
        os.mknod(tmp_path / name, 0o600 | 0o020000, os.makedev(1, minor))
    return str(tmp_path)


def _probe_device_access(m, procs, nodes: str) -> list[str]:
    p = procs(_OPEN_PROBE.replace("sys.argv[1]", repr(nodes)))
    m.add_process(p.pid)
    go(p)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return out.decode().split("\n")[:-1]


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


EXPECTED_ACCESS = [f"null {os.O_RDWR} ok", f"kmsg {os.O_RDONLY} ok", f"kmsg {os.O_WRONLY} denied",
                   f"mem {os.O_RDONLY} denied"]


def test_device_rules_allow_only_defaults_and_extra_rules(parent, procs, tmp_path):
    """Docker's default list plus one extra rule ("c 1:11 r": read, not write); a device no
    rule names (1:1) is refused at open."""
    from engine.runtime.cgroups import DeviceRule

    m = for_container(parent, new_id())
    m.create(Resources(device_rules=(DeviceRule.parse("c 1:11 r"),)))
    assert _probe_device_access(m, procs, _device_nodes(tmp_path)) == EXPECTED_ACCESS
    m.destroy()


@pytest.mark.skipif(MODE == "v2" or _cgroup2_mount() is None, reason="needs the cgroup2 tree of a hybrid host")
def test_v2_device_filter_on_the_hybrid_unified_tree(parent, procs, tmp_path):
    """The v2 manager's eBPF device filter, exercised on a hybrid host's (controller-less)
    unified tree: the same rules as v1's devices.allow, enforced at open."""
    from engine.runtime.cgroups import DeviceRule, Hierarchy, Layout

    mount = _cgroup2_mount()
    layout = Layout("v2", (Hierarchy("", (), mount, "/", mount),))
    m = for_container(parent, new_id(), layout)
    try:
        m.create(Resources(device_rules=(DeviceRule.parse("c 1:11 r"),)))
        assert _probe_device_access(m, procs, _device_nodes(tmp_path)) == EXPECTED_ACCESS
        privileged = for_container(parent, new_id(), layout)
        privileged.create(Resources(allow_all_devices=True))
        try:
            assert _probe_device_access(privileged, procs, str(tmp_path)) == [
                f"null {os.O_RDWR} ok", f"kmsg {os.O_RDONLY} ok", f"kmsg {os.O_WRONLY} ok", f"mem {os.O_RDONLY} ok"]
        finally:
            privileged.destroy()
    finally:
        m.destroy()
        cleanup_stale(parent, [], layout)
        for d in for_container(parent, "x", layout).parent_dirs():
            if os.path.isdir(d):
                os.rmdir(d)
