"""engine.api._gotypes: request bodies read as dockerd's Go decoder reads them."""

from __future__ import annotations

import pytest

from engine import errors
from engine.api._container_json import detach_keys, host_config
from engine.api._gotypes import expect, go_keys

FIELDS = frozenset({"CpuRealtimePeriod", "CpuShares"})


def test_keys_match_fields_case_insensitively_as_go_does():
    assert go_keys({"CPURealtimePeriod": 1, "cpushares": 2, "Other": 3}, FIELDS) == {
        "CpuRealtimePeriod": 1, "CpuShares": 2, "Other": 3}
    # two spellings of one field: the later wins, as in Go
    assert go_keys({"CpuShares": 1, "CPUSHARES": 2}, FIELDS) == {"CpuShares": 2}
    assert go_keys({"CPUSHARES": 2, "CpuShares": 1}, FIELDS) == {"CpuShares": 1}


def test_host_config_and_exec_bodies_use_it():
    host = host_config({"CPURealtimePeriod": 1000, "cpuRealtimeRuntime": 500, "cpushares": 7})
    assert (host.resources.cpu_realtime_period, host.resources.cpu_realtime_runtime,
            host.resources.cpu_shares) == (1000, 500, 7)
    assert detach_keys({"detachKeys": "ctrl-x"}) == "ctrl-x"
    assert detach_keys({}) is None


def test_a_value_of_the_wrong_json_type_is_a_400_in_gos_words():
    with pytest.raises(errors.InvalidParameter) as info:
        expect([1], str, "NetworkCreateRequest.Driver", "")
    assert info.value.message == ("json: cannot unmarshal array into Go struct field NetworkCreateRequest.Driver "
                                  "of type string")
