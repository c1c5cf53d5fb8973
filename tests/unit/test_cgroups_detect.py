"""Hierarchy detection and Resources arithmetic (no root, no real cgroups)."""

import pytest

from engine.errors import InvalidParameter
from engine.runtime.cgroups import Resources, build_layout, for_container, shares_to_weight

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 /process_api /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
"""

COMOUNT_MOUNTINFO = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n"
COMOUNT_CGROUP = "2:cpu,cpuacct:/user.slice\n0::/\n"

V2_MOUNTINFO = "31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V2_CGROUP = "0::/user.slice/session-1.scope\n"


def test_hybrid_is_v1_with_separate_cpu_and_cpuacct():
    lay = build_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert lay.mode == "v1"
    names = [h.name for h in lay.hierarchies]
    assert names == ["cpu", "cpuacct", "cpuset", "memory", "name=systemd"]
    # memory's mount shows /process_api as its root; we live in /process_api/abc
    assert lay.by_controller("memory").own == "/sys/fs/cgroup/memory/abc"
    assert lay.by_controller("cpu").own == "/sys/fs/cgroup/cpu"


def test_v1_paths_relative_and_absolute_parent():
    lay = build_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    cid = "a" * 64
    m = for_container("pyengine", cid, _layout=lay)
    assert m.path("memory") == f"/sys/fs/cgroup/memory/abc/pyengine/{cid}"
    assert m.path("cpuacct") == f"/sys/fs/cgroup/cpuacct/pyengine/{cid}"
    m = for_container("/docker", cid, _layout=lay)
    assert m.path("memory") == f"/sys/fs/cgroup/memory/docker/{cid}"
    assert len(m.dirs()) == 5


def test_comounted_cpu_cpuacct():
    lay = build_layout(COMOUNT_MOUNTINFO, COMOUNT_CGROUP)
    assert lay.mode == "v1"
    (h,) = lay.hierarchies
    assert h.name == "cpu,cpuacct"
    assert lay.by_controller("cpuacct") is h
    assert h.own == "/sys/fs/cgroup/cpu,cpuacct/user.slice"


def test_pure_v2():
    lay = build_layout(V2_MOUNTINFO, V2_CGROUP)
    assert lay.mode == "v2"
    m = for_container("pyengine", "b" * 64, _layout=lay)
    assert m.dirs() == ["/sys/fs/cgroup/pyengine/" + "b" * 64]


@pytest.mark.parametrize("bad", ["", "..", "a/b", "."])
def test_bad_container_id(bad):
    lay = build_layout(V2_MOUNTINFO, V2_CGROUP)
    with pytest.raises(InvalidParameter):
        for_container("pyengine", bad, _layout=lay)


def test_bad_parent():
    lay = build_layout(V2_MOUNTINFO, V2_CGROUP)
    with pytest.raises(InvalidParameter):
        for_container("../x", "c" * 64, _layout=lay)


def test_swap_semantics():
    m = 64 << 20
    assert Resources(memory=m).memsw_limit() == 2 * m
    assert Resources(memory=m, memory_swap=-1).memsw_limit() == -1
    assert Resources(memory=m, memory_swap=3 * m).memsw_limit() == 3 * m
    assert Resources().memsw_limit() is None
    with pytest.raises(InvalidParameter):
        Resources(memory=m, memory_swap=m // 2).validate()
    with pytest.raises(InvalidParameter):
        Resources(memory=1 << 20).validate()


def test_cpu_conversions():
    assert Resources(nano_cpus=500_000_000).cfs() == (50_000, 100_000)
    assert Resources(nano_cpus=2_000_000_000).cfs() == (200_000, 100_000)
    assert Resources(cpu_quota=20_000).cfs() == (20_000, 100_000)
    assert Resources().cfs() is None
    with pytest.raises(InvalidParameter):
        Resources(nano_cpus=10**9, cpu_period=50_000).validate()
    assert shares_to_weight(1024) == 39  # runc: 1 + (1022*9999)/262142
    assert shares_to_weight(2) == 1
    assert shares_to_weight(262144) == 10000


def test_pids_max():
    assert Resources().pids_max() is None
    assert Resources(pids_limit=0).pids_max() == -1
    assert Resources(pids_limit=-1).pids_max() == -1
    assert Resources(pids_limit=10).pids_max() == 10
