"""docker update's merge rules and restart-policy validation (dockerd's messages), and the
blkio weight writers for cgroup v1 and v2."""

from __future__ import annotations

import pytest

from engine import errors
from engine.api._container_json import host_config, host_config_shape
from engine.containers.model import Container, RestartPolicy
from engine.containers.spec import ContainerConfig
from engine.containers.update import merged_host_config as merged
from engine.runtime.cgroups import BLKIO_WEIGHT_UNSUPPORTED_WARNING, Resources
from engine.runtime.cgroups import _v1, _v2


def container(**host) -> Container:
    return Container(id="c" * 64, name="web", created_ns=1, image_id="sha256:x", path="sh", args=[],
                     config=ContainerConfig(), host_config=host_config({"Memory": 0, "MemorySwap": 0, **host}),
                     directory="/nonexistent")


def merged_host_config(c, resources, policy):
    return host_config_shape(merged(c, resources, policy))


def test_zero_fields_keep_their_value_and_set_ones_replace_it():
    c = container(Memory=400 << 20, MemorySwap=800 << 20, CpuShares=256, PidsLimit=10)
    host = merged_host_config(c, Resources(memory=300 << 20, cpuset_cpus="0", pids_limit=-1),
                              RestartPolicy("on-failure", 3))
    assert (host["Memory"], host["MemorySwap"], host["CpuShares"], host["CpusetCpus"], host["PidsLimit"]) == \
        (300 << 20, 800 << 20, 256, "0", 0)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert c.host_config.resources.memory == 400 << 20  # the record is untouched until applied


@pytest.mark.parametrize("host,update,message", [
    ({}, Resources(memory=100 << 20),
     "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"),
    ({"NanoCpus": 10**9}, Resources(cpu_quota=50000),
     "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"),
    ({"CpuPeriod": 100000}, Resources(nano_cpus=10**9),
     "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"),
])
def test_conflicting_updates_are_refused_naming_the_container(host, update, message):
    with pytest.raises(errors.InvalidParameter) as info:
        merged_host_config(container(**host), update, None)
    assert info.value.message == f"Cannot update container {'c' * 64}: {message}"


def test_restart_policy_cannot_be_set_on_an_auto_remove_container():
    with pytest.raises(errors.InvalidParameter, match="AutoRemove is enabled"):
        merged_host_config(container(AutoRemove=True), Resources(), RestartPolicy("always"))
    assert merged_host_config(container(AutoRemove=True), Resources(), RestartPolicy("no"))["RestartPolicy"]["Name"] == "no"


@pytest.mark.parametrize("policy,message", [
    (RestartPolicy("always", 3), "maximum retry count cannot be used with restart policy 'always'"),
    (RestartPolicy("no", -1), "maximum retry count cannot be used with restart policy 'no'"),
    (RestartPolicy("on-failure", -2), "maximum retry count cannot be negative"),
    (RestartPolicy("sometimes"), "invalid restart policy 'sometimes'"),
])
def test_restart_policy_validation_matches_dockerd(policy, message):
    with pytest.raises(errors.InvalidParameter) as info:
        policy.validate()
    assert info.value.message == message


@pytest.mark.parametrize("policy", [RestartPolicy("", 5), RestartPolicy("on-failure", 0), RestartPolicy("unless-stopped")])
def test_valid_restart_policies(policy):
    policy.validate()  # an empty name with a count is what clients before Docker 25 sent


def test_blkio_weight_v1_writes_the_weight_file_or_warns(tmp_path):
    assert _v1.set_blkio(str(tmp_path), Resources(blkio_weight=300)) == [BLKIO_WEIGHT_UNSUPPORTED_WARNING]
    (tmp_path / "blkio.bfq.weight").write_text("100\n")
    assert _v1.set_blkio(str(tmp_path), Resources(blkio_weight=300)) == []
    assert (tmp_path / "blkio.bfq.weight").read_text().strip() == "300"


def test_blkio_weight_v2_converts_to_io_weight(tmp_path):
    assert _v2.set_io(str(tmp_path), Resources(blkio_weight=500)) == [BLKIO_WEIGHT_UNSUPPORTED_WARNING]
    (tmp_path / "io.weight").write_text("default 100\n")
    assert _v2.set_io(str(tmp_path), Resources(blkio_weight=1000)) == []
    assert (tmp_path / "io.weight").read_text().strip() == "default 10000"
    with pytest.raises(errors.InvalidParameter, match="Range of blkio weight is from 10 to 1000"):
        Resources(blkio_weight=5).validate()


def test_restart_delays_as_dockerds_restart_manager():
    from engine.containers.supervision import next_restart_delay

    delays, delay = [], 0.0
    for _ in range(12):
        delay = next_restart_delay(delay, ran_ns=300_000_000)
        delays.append(delay)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == 60.0  # the first restart waits 100 ms (was 200)
    assert next_restart_delay(12.8, ran_ns=10_000_000_000) == 0.1  # a run of 10 s starts over
