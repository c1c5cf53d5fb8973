"""`docker stats` JSON from typed samples: dockerd's shapes for cgroup v1 and v2 hosts and for
a container that does not run."""

from engine.api._stats_json import stats_shape
from engine.containers.stats import NetworkStats, StatsSample, parse_net_dev
from engine.runtime.cgroups import BlkioEntry, BlkioStats, CgroupStats, CpuStats, MemoryStats, PidsStats

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1500      12    1    2    0     0          0         0      700       7    3    4    0     0       0          0
"""


def test_net_dev_leaves_loopback_out():
    assert parse_net_dev(NET_DEV) == {"eth0": NetworkStats(1500, 12, 1, 2, 700, 7, 3, 4)}


def test_a_v1_sample():
    cgroup = CgroupStats(
        memory=MemoryStats(usage=10, limit=64, stats={"cache": 1}, max_usage=12, failcnt=0),
        cpu=CpuStats(total_ns=5, kernel_ns=1, user_ns=3, percpu_ns=(2, 3), system_ns=99, online_cpus=2,
                     periods=4, throttled_periods=1, throttled_ns=7),
        pids=PidsStats(current=1, limit=None),
        blkio=BlkioStats(service_bytes=(BlkioEntry(8, 0, "Read", 4096),)),
    )
    shape = stats_shape(StatsSample(0, "web", "c1", cgroup, parse_net_dev(NET_DEV)))
    assert shape["read"] == "0001-01-01T00:00:00Z" and (shape["name"], shape["id"]) == ("/web", "c1")
    # failcnt 0 is left out, as dockerd's omitempty does
    assert shape["memory_stats"] == {"usage": 10, "max_usage": 12, "limit": 64, "stats": {"cache": 1}}
    assert shape["cpu_stats"] == {
        "cpu_usage": {"total_usage": 5, "percpu_usage": [2, 3], "usage_in_kernelmode": 1, "usage_in_usermode": 3},
        "system_cpu_usage": 99, "online_cpus": 2,
        "throttling_data": {"periods": 4, "throttled_periods": 1, "throttled_time": 7}}
    assert shape["pids_stats"] == {"current": 1}
    assert shape["blkio_stats"]["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "Read", "value": 4096}]
    assert shape["blkio_stats"]["io_serviced_recursive"] is None and len(shape["blkio_stats"]) == 8
    assert shape["networks"]["eth0"]["tx_dropped"] == 4 and (shape["num_procs"], shape["storage_stats"]) == (0, {})


def test_a_v2_sample_and_one_without_memory_or_network():
    shape = stats_shape(StatsSample(1, "w", "c2", CgroupStats(
        memory=MemoryStats(usage=10, limit=64), cpu=CpuStats(total_ns=5), pids=PidsStats(current=2, limit=9))))
    assert shape["memory_stats"] == {"usage": 10, "limit": 64, "stats": {}}
    assert "percpu_usage" not in shape["cpu_stats"]["cpu_usage"] and shape["pids_stats"] == {"current": 2, "limit": 9}
    assert "networks" not in shape
    assert stats_shape(StatsSample(1, "w", "c2", CgroupStats()))["memory_stats"] == {}


def test_a_container_that_does_not_run():
    shape = stats_shape(StatsSample(1, "w", "c3"))
    assert shape["cpu_stats"] == {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}
    assert shape["memory_stats"] == shape["pids_stats"] == shape["blkio_stats"] == {} and "networks" not in shape
