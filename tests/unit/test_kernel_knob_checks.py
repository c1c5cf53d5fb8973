"""HostConfig kernel knobs without root: create-time validation and warnings (incl. a pure-v2
host's), and what the v1/v2 cgroup writers put in which file."""

import pytest

from engine import errors
from engine.containers import blkio, sysctls
from engine.api._container_json import host_config, host_config_shape
from engine.containers.config import validate_host_config
from engine.runtime import cgroups
from engine.runtime.cgroups import Resources, _v1, _v2
from engine.runtime.cgroups._detect import Hierarchy, Layout


def host_after_create(host, monkeypatch, support):
    monkeypatch.setattr(cgroups, "support", lambda: support)
    kept, warnings = validate_host_config(host_config(host))
    return host_config_shape(kept), warnings


def v2_support(tmp_path, controllers="cpu io memory pids"):
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    return cgroups.detect_support(Layout("v2", (Hierarchy("", (), str(tmp_path), "/", str(tmp_path)),)))


def test_v2_discards_swappiness_and_oom_kill_disable_with_dockerds_warnings(tmp_path, monkeypatch):
    support = v2_support(tmp_path)
    assert not support.memory_swappiness and not support.oom_kill_disable and support.blkio_read_bps
    host, warnings = host_after_create({"MemorySwappiness": 10, "OomKillDisable": True, "Memory": 64 << 20},
                                       monkeypatch, support)
    assert warnings == [cgroups.SWAPPINESS_UNSUPPORTED_WARNING, cgroups.OOM_KILL_DISABLE_UNSUPPORTED_WARNING]
    assert (host["MemorySwappiness"], host["OomKillDisable"]) == (None, False)
    # -1 is the API's "unset": no warning; 0 is a value
    assert host_after_create({"MemorySwappiness": -1}, monkeypatch, support)[1] == []
    assert host_after_create({"MemorySwappiness": 0}, monkeypatch, support)[1] == [
        cgroups.SWAPPINESS_UNSUPPORTED_WARNING]


def test_v2_without_the_io_controller_discards_device_limits(tmp_path, monkeypatch):
    support = v2_support(tmp_path, "cpu memory")
    host, warnings = host_after_create({"BlkioDeviceWriteIOps": [{"Path": "/dev/vda", "Rate": 5}]},
                                       monkeypatch, support)
    assert warnings == [cgroups.BLKIO_DEVICE_UNSUPPORTED_WARNINGS["blkio_write_iops"]]
    assert host["BlkioDeviceWriteIOps"] == []


def test_v1_keeps_them_and_warns_about_an_unlimited_oom_disabled_container(monkeypatch):
    support = cgroups.Support(memory_swappiness=True, oom_kill_disable=True)
    host, warnings = host_after_create({"MemorySwappiness": 0, "OomKillDisable": True}, monkeypatch, support)
    assert (host["MemorySwappiness"], host["OomKillDisable"]) == (0, True)
    assert warnings == [cgroups.OOM_KILL_DISABLE_NO_LIMIT_WARNING]
    assert host["CgroupnsMode"] == "private"  # the default kept


@pytest.mark.parametrize("host, message", [
    ({"Sysctls": {"kernel.domainname": "x"}, "UTSMode": "host"},
     'sysctl "kernel.domainname" is not in a separate kernel namespace'),
    ({"Sysctls": {"kernel.hostname": "x"}},
     'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "container:abc"}, "another container's"),
    ({"Sysctls": {"net.ipv4.ip_forward": 1}}, "Sysctls must be a map of strings to strings"),
    ({"Sysctls": {"net..x": "1"}}, "is not in a separate kernel namespace"),
])
def test_sysctls_outside_the_containers_namespaces_are_refused(host, message):
    with pytest.raises(errors.InvalidParameter, match=message):
        sysctls.validate(host_config(host))


def test_allowed_sysctls():
    sysctls.validate(host_config({"Sysctls": {"kernel.domainname": "x", "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4",
                                  "net.core.somaxconn": "10"}}))


def test_blkio_entries_are_checked(monkeypatch):
    with pytest.raises(errors.InvalidParameter, match="invalid BlkioDeviceReadBps entry"):
        blkio.validate(host_config({"BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": -1}]}).resources, [],
                       cgroups.Support())
    with pytest.raises(errors.InvalidParameter, match="weight must be between 10 and 1000"):
        blkio.validate(host_config({"BlkioWeightDevice": [{"Path": "/dev/vda", "Weight": 5}]}).resources, [],
                       cgroups.Support())


def test_a_missing_throttled_device_fails_the_start_naming_it():
    with pytest.raises(errors.InvalidParameter, match='"/dev/pe-none": no such file or directory'):
        blkio.resolve(host_config({"BlkioDeviceReadBps": [{"Path": "/dev/pe-none", "Rate": 1}]}).resources)


@pytest.fixture
def writes(monkeypatch):
    done = []
    monkeypatch.setattr(cgroups._fs, "write", lambda path, value: done.append((path.rsplit("/", 1)[1], str(value))))
    return done


DEVICE_LIMITS = Resources(blkio_read_bps=((8, 0, 1024),), blkio_write_iops=((8, 0, 50),),
                          blkio_weight_device=((8, 0, 500),))


def test_v2_device_limits_go_to_io_max_and_io_weight(tmp_path, writes):
    (tmp_path / "io.weight").write_text("default 100\n")
    _v2.set_io(str(tmp_path), DEVICE_LIMITS)
    assert writes == [("io.max", "8:0 rbps=1024"), ("io.max", "8:0 wiops=50"), ("io.weight", "8:0 4950")]
    writes.clear()
    _v2.set_memory(str(tmp_path), Resources(memory_swappiness=10, oom_kill_disable=True))
    assert writes == []  # v2 has neither (warned and discarded at create)


def test_v1_writes_swappiness_oom_control_and_throttle_files(tmp_path, writes):
    (tmp_path / "blkio.weight_device").write_text("")
    _v1.set_memory(str(tmp_path), Resources(memory_swappiness=0, oom_kill_disable=True))
    assert writes == [("memory.swappiness", "0"), ("memory.oom_control", "1")]
    writes.clear()
    _v1.set_memory(str(tmp_path), Resources(memory_swappiness=-1))
    assert writes == []
    _v1.set_blkio(str(tmp_path), DEVICE_LIMITS)
    assert writes == [("blkio.throttle.read_bps_device", "8:0 1024"), ("blkio.throttle.write_iops_device", "8:0 50"),
                      ("blkio.weight_device", "8:0 500")]


def test_swappiness_range():
    with pytest.raises(errors.InvalidParameter, match="valid memory swappiness range is 0-100"):
        Resources(memory_swappiness=101).validate()


def test_host_cgroupns_binds_the_containers_own_cgroup():
    v2 = cgroups.for_container("pyengine", "c" * 64, _layout=Layout("v2", (Hierarchy("", (), "/sys/fs/cgroup", "/", "/"),)))
    (mount,) = v2.container_mounts(own_namespace=False)
    assert (mount.destination, mount.type, mount.source) == ("/sys/fs/cgroup", "bind", "/sys/fs/cgroup/pyengine/" + "c" * 64)
    assert "ro" in mount.options
    (mount,) = v2.container_mounts()
    assert mount.type == "cgroup2"


@pytest.mark.parametrize("cpus, mems, message", [
    ("7", "", "Requested CPUs are not available - requested 7, available: 0-1"),
    ("0-1,x", "", "Invalid value 0-1,x for cpuset cpus"),
    ("", "1", "Requested memory nodes are not available - requested 1, available: 0"),
    ("1-", "", "Invalid value 1- for cpuset cpus"),
])
def test_cpusets_the_host_lacks_are_refused_at_create(monkeypatch, cpus, mems, message):
    support = cgroups.Support(cpus="0-1", mems="0")
    with pytest.raises(errors.InvalidParameter, match=f"^{message}$"):
        host_after_create({"CpusetCpus": cpus, "CpusetMems": mems}, monkeypatch, support)
    host, _ = host_after_create({"CpusetCpus": "1,0", "CpusetMems": "0"}, monkeypatch, support)
    assert (host["CpusetCpus"], host["CpusetMems"]) == ("1,0", "0")


def test_blkio_weight_without_the_hosts_support_is_discarded_with_dockerds_warning(monkeypatch):
    host, warnings = host_after_create({"BlkioWeight": 5}, monkeypatch, cgroups.Support(blkio_weight=False))
    assert (host["BlkioWeight"], warnings) == (0, [cgroups.BLKIO_WEIGHT_UNSUPPORTED_WARNING])  # no range check
    with pytest.raises(errors.InvalidParameter, match="^Range of blkio weight is from 10 to 1000$"):
        host_after_create({"BlkioWeight": 5}, monkeypatch, cgroups.Support(blkio_weight=True))
    host, warnings = host_after_create({"BlkioWeight": 300}, monkeypatch, cgroups.Support(blkio_weight=True))
    assert (host["BlkioWeight"], warnings) == (300, [])
