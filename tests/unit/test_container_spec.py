"""The typed container spec: Docker's create JSON → spec → Docker's inspect JSON, the record
on disk (format 2), and records written before the spec (format 1: Docker's JSON, taken from
a daemon of that build by the docker CLI, docker-py and docker-compose 1.29) loading as they
were."""

from __future__ import annotations

import json
import os

import attrs
import pytest

from engine.runtime import MASKED_PATHS, READONLY_PATHS

from engine import errors
from engine.api import container_spec_from_docker
from engine.api._container_json import (
    OMITTED_WHEN_EMPTY,
    config_shape, create_request, exec_config, exec_shape, host_config, host_config_shape)
from engine.containers import ContainerConfig, HostConfig, record
from engine.config import Config
from engine.containers.config import validate_host_config, with_daemon_defaults, with_image_defaults
from engine.images import RunConfig
from engine.containers.model import Status

V1 = os.path.join(os.path.dirname(__file__), "container_records_v1.json")


def v1_records() -> dict:
    with open(V1) as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(v1_records()))
def test_a_record_of_the_previous_format_loads_and_inspects_as_before(name, tmp_path):
    old = v1_records()[name]
    container = record.from_data(old, container_spec_from_docker)
    assert (container.id, container.name, container.state.status) == (old["id"], old["name"], Status(old["state"]["status"]))
    expected = dict(old["config"])
    if "Healthcheck" in expected:  # docker-py's null fields are left out, as dockerd does (omitempty)
        expected["Healthcheck"] = {k: v for k, v in expected["Healthcheck"].items() if v is not None}
    # empty ExposedPorts and HostConfig.Mounts are left out now, as dockerd does (omitempty)
    expected = {k: v for k, v in expected.items() if k != "ExposedPorts" or v}
    assert config_shape(container.config) == expected
    # and the CLI's unset values as dockerd keeps them: MemorySwappiness -1 → null, IpcMode "" → private,
    # PidsLimit 0 (no limit) → null
    unset = {"MemorySwappiness": (-1, None), "IpcMode": ("", "private"), "PidsLimit": (0, None)}
    assert host_config_shape(container.host_config) == {
        k: unset[k][1] if k in unset and v == unset[k][0] else v
        for k, v in old["host_config"].items() if (v if k in OMITTED_WHEN_EMPTY else k != "Init" or v is not None)}
    # written back in format 2, it reads the same
    container.directory = str(tmp_path)
    container.save()
    with open(tmp_path / "config.v2.json") as f:
        data = json.load(f)
    assert record.format_of(data) == record.FORMAT == 2
    # the previous build loads it (keys of its Container, its State), so a downgrade removes nothing
    assert set(data) == set(old) and set(data["state"]) == set(old["state"])
    again = record.load(str(tmp_path))
    assert (again.config, again.host_config, again.state) == (container.config, container.host_config, container.state)


def test_a_record_of_the_previous_format_without_a_reader_is_left_alone():
    with pytest.raises(record.UnreadableRecord):
        record.from_data(v1_records()["raw"])


def test_the_cli_body_round_trips_and_unknown_fields_are_shown_back():
    body = {
        "Image": "busybox", "Cmd": ["sh"], "Entrypoint": None, "Env": ["A=1"], "Labels": {"x": "y"},
        "ExposedPorts": {"80/tcp": {}}, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000},
        "Unknown": 1,
        "HostConfig": {
            "Binds": ["/tmp:/t:ro,rshared", "vol:/v"], "Memory": 64 << 20, "PidsLimit": None, "Isolation": "",
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, "ConsoleSize": [10, 20],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}, "Annotations": {"a": "b"},
            "Mounts": [{"Type": "tmpfs", "Target": "/t2", "TmpfsOptions": {"SizeBytes": 1000}},
                       {"Type": "volume", "Source": "v2", "Target": "/v2", "VolumeOptions": {"NoCopy": True, "DriverConfig": {}}}],
            "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}], "Sysctls": {"net.ipv4.ip_forward": "1"},
            "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rw"}],
        },
    }
    config, host = create_request(body)
    assert host.binds[0].read_only and host.binds[0].propagation == "rshared" and host.binds[1].is_volume
    assert host.resources.memory == 64 << 20 and host.restart_policy.maximum_retry_count == 2
    assert host.other == {"Isolation": "", "ConsoleSize": [10, 20], "Annotations": {"a": "b"}}
    config = with_image_defaults(config, RunConfig.from_json({"Env": ["PATH=/bin", "A=0"], "Cmd": ["ignored"]}))
    host, warnings = validate_host_config(with_daemon_defaults(host, Config()))  # as ContainerManager.create
    assert warnings == [] and host.resources.memory_swap == 128 << 20  # dockerd's default: 2 × memory
    shown = host_config_shape(host)
    for key, value in body["HostConfig"].items():
        if key not in ("PidsLimit", "Sysctls"):
            assert shown[key] == value, key
    assert shown["Sysctls"] == {"net.ipv4.ip_forward": "1"} and shown["PidsLimit"] is None
    assert (shown["MemorySwap"], shown["CgroupnsMode"], shown["ShmSize"]) == (128 << 20, "private", 64 << 20)
    cshape = config_shape(config)
    assert cshape["Env"] == ["A=1", "PATH=/bin"] and cshape["Cmd"] == ["sh"] and cshape["Entrypoint"] is None
    assert cshape["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000}
    assert cshape["ExposedPorts"] == {"80/tcp": {}} and "Unknown" not in cshape


def test_record_format_2_keeps_the_spec(tmp_path):
    from engine.containers.model import Container

    config, host = create_request({"Image": "busybox", "Cmd": "echo hi", "HostConfig": {"Tmpfs": {"/run": ""}}})
    c = Container(id="c" * 64, name="n", created_ns=1, image_id="sha256:x", path="echo", args=["hi"],
                  config=config, host_config=host, directory=str(tmp_path))
    c.save()
    loaded = record.load(str(tmp_path))
    assert loaded.config == config and loaded.host_config == host and loaded.config.cmd == ("echo", "hi")
    # an update replaces the host config: the next save writes the new one
    c.host_config = attrs.evolve(host, resources=attrs.evolve(host.resources, memory=7 << 20))
    c.save()
    assert record.load(str(tmp_path)).host_config.resources.memory == 7 << 20


@pytest.mark.parametrize("body, message", [
    ({"Image": "busybox", "HostConfig": {"Memory": "64m"}}, "invalid value for Memory: '64m'"),
    ({"Image": "busybox", "HostConfig": {"Binds": ["relative/path:/x"]}}, "includes invalid characters"),
    ({"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": "x"}}},
     "MaximumRetryCount must be an integer"),
    ({"Image": "busybox", "HostConfig": {"Sysctls": {"a": 1}}}, "Sysctls must be a map of strings to strings"),
    ({"Image": "busybox", "HostConfig": "x"}, "HostConfig must be a JSON object"),
    ({"Image": "busybox", "Healthcheck": {"Test": "true"}}, "Healthcheck.Test must be a list of strings"),
    ({"Cmd": ["x"]}, "Config cannot be empty in order to create a container"),
])
def test_wrong_shapes_are_400s_with_dockerds_words(body, message):
    with pytest.raises(errors.InvalidParameter, match=message):
        create_request(body)


@pytest.mark.parametrize("host, message", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy 'sometimes'"),
    ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}}, "can't create 'AutoRemove' container with restart policy"),
    ({"LogConfig": {"Type": "syslog"}}, "log driver 'syslog' is not supported by pyengine"),
    ({"PidMode": "container:"}, "invalid PID mode: container:"),
    ({"IpcMode": "sharable"}, "Invalid IPC mode: sharable"),
    ({"UTSMode": "container:x"}, "invalid UTS mode: container:x"),
    ({"KernelMemory": 4 << 20}, "Minimum kernel memory limit allowed is 6MB"),
])
def test_dockerds_rules_on_the_values(host, message):
    with pytest.raises(errors.InvalidParameter, match=message):
        validate_host_config(host_config(host))


def test_kernel_memory_is_kept_with_a_warning_and_storage_opt_refused():
    host, warnings = validate_host_config(host_config({"KernelMemory": 8 << 20}))
    assert host.resources.kernel_memory == 8 << 20
    assert warnings == ["Specifying a kernel memory limit is deprecated and will be removed in a future release."]
    with pytest.raises(errors.SystemError_, match="--storage-opt is supported only for overlay over xfs"):
        validate_host_config(host_config({"StorageOpt": {"size": "1G"}}))
    assert validate_host_config(host_config({"StorageOpt": {}}))[1] == []


def test_image_defaults_and_an_empty_entrypoint():
    image = RunConfig.from_json({"Entrypoint": ["/ep"], "Cmd": ["c"], "User": "u", "WorkingDir": "/w",
                                 "Labels": {"a": "1"}, "Healthcheck": {"Test": ["CMD", "img"], "Retries": 4}})
    config = with_image_defaults(ContainerConfig(image="i"), image)
    assert config.command == ("/ep", "c") and (config.user, config.working_dir) == ("u", "/w")
    assert config.healthcheck.test == ("CMD", "img") and config.healthcheck.retries == 4
    assert with_image_defaults(ContainerConfig(image="i", entrypoint=("",), cmd=("x",)), image).command == ("x",)
    with pytest.raises(errors.InvalidParameter, match="No command specified"):
        with_image_defaults(ContainerConfig(image="i", entrypoint=("",)), image)


def test_exec_config_and_its_inspect_shape():
    import types

    config = exec_config({"Cmd": "ls", "AttachStdout": True, "detachKeys": "ctrl-a"})
    assert (config.cmd, config.attach_stdout, config.attach_stderr, config.detach_keys) == (("ls",), True, None, "ctrl-a")
    shape = exec_shape(types.SimpleNamespace(id="e", running=False, exit_code=None, container_id="c", pid=0,
                                             config=config))
    assert shape["ProcessConfig"]["entrypoint"] == "ls" and shape["OpenStdout"] and not shape["OpenStderr"]
    assert exec_config({"Cmd": 5}).cmd == ()  # refused by the engine after its state checks


@pytest.mark.parametrize("given, shown", [
    ({}, {"IpcMode": "private", "MemorySwappiness": None, "MaskedPaths": list(MASKED_PATHS),
          "ReadonlyPaths": list(READONLY_PATHS)}),
    ({"IpcMode": "", "MemorySwappiness": -1, "MaskedPaths": [], "ReadonlyPaths": []},  # the CLI's unset values
     {"IpcMode": "private", "MemorySwappiness": None, "MaskedPaths": [], "ReadonlyPaths": []}),
    ({"Privileged": True}, {"MaskedPaths": None, "ReadonlyPaths": None}),
])
def test_create_fills_in_what_dockerd_fills_in(given, shown):
    _, host = create_request({"Image": "busybox", "HostConfig": given})
    host, _ = validate_host_config(with_daemon_defaults(host, Config()))  # as ContainerManager.create
    out = host_config_shape(host)
    assert {k: out[k] for k in shown} == shown
    assert "Mounts" not in out and "ExposedPorts" not in config_shape(create_request({"Image": "x"})[0])


def test_a_host_config_built_in_python_has_dockers_defaults():
    shown = host_config_shape(HostConfig())
    assert (shown["NetworkMode"], shown["RestartPolicy"], shown["LogConfig"], shown["IpcMode"]) == \
        ("default", {"Name": "no", "MaximumRetryCount": 0}, {"Type": "json-file", "Config": {}}, "private")
    assert (shown["Binds"], shown["Devices"], shown["BlkioWeightDevice"], shown["BlkioDeviceReadBps"]) == (None, [], [], None)


def test_an_images_run_config_from_its_json():
    assert RunConfig.from_json(None) == RunConfig() == RunConfig.from_json({"Env": None, "Healthcheck": None})
    got = RunConfig.from_json({"ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "Env": ["A=1"],
                               "StopSignal": "SIGINT", "Shell": ["/bin/bash", "-c"]})
    assert (got.exposed_ports, got.volumes, got.env) == (("80/tcp",), ("/data",), ("A=1",))
    config = with_image_defaults(ContainerConfig(image="i", cmd=("x",), env=("A=2",)), got)
    assert config.env == ("A=2",) and config.stop_signal == "SIGINT" and config.shell == ("/bin/bash", "-c")
    assert config.exposed_ports == ("80/tcp",) and config.volumes == ("/data",)


@pytest.mark.parametrize("mount, message", [
    ({"Type": "bind", "Source": "/pe-no-such-dir", "Target": "/x"}, "bind source path does not exist: /pe-no-such-dir"),
    ({"Type": "bind", "Source": "rel", "Target": "/x"}, "invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "tmpfs", "Source": "foo", "Target": "/x"}, "field Source must not be specified"),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True}, "must not set ReadOnly mode when using anonymous volumes"),
    ({"Type": "bind", "Source": "/tmp", "Target": "/"}, "invalid specification: destination can't be '/'"),
    ({"Type": "bind", "Source": "/tmp", "Target": "rel"}, "invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "weird", "Source": "/tmp", "Target": "/x"}, "mount type unknown"),
    ({"Type": "volume", "Source": "v", "Target": "/x", "BindOptions": {}}, "field BindOptions must not be specified"),
    ({"Type": "bind", "Source": "/tmp", "Target": "/x", "VolumeOptions": {}}, "field VolumeOptions must not be specified"),
    ({"Type": "bind", "Target": "/x"}, "field Source must not be empty"),
])
def test_mounts_are_checked_as_dockerd_checks_them(mount, message):
    """Each message as dockerd 20.10 answers it (400), checked side by side."""
    with pytest.raises(errors.InvalidParameter) as err:
        validate_host_config(host_config({"Mounts": [mount]}))
    assert err.value.message == f'invalid mount config for type "{mount["Type"]}": {message}'


def test_env_merges_as_dockerd():
    from engine.containers.config import merge_env, process_env, replace_or_append

    # create: the request's entries as given, then the image's it does not set
    assert merge_env(["PATH=/img", "Q=2"], ["A=1", "B", "Q=3", "A=4"]) == ["A=1", "B", "Q=3", "A=4", "PATH=/img"]
    with pytest.raises(errors.InvalidParameter):
        merge_env([], ["=1"])
    # start: replaced in place or appended, entries without "=" unset
    assert replace_or_append(["PATH=/a", "B=2"], ["B", "C=1", "PATH=/b", "C=2"]) == ["PATH=/b", "C=2"]
    assert process_env(["A=1", "HOSTNAME=h2", "B"], "h", True, ["L_NAME=/x/l"]) == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h2", "TERM=xterm",
        "L_NAME=/x/l", "A=1"]


def test_bind_to_a_relative_path_names_it():
    from engine.containers.spec import Bind

    with pytest.raises(errors.InvalidParameter, match="invalid mount path: 'relative' mount path must be absolute"):
        Bind.parse("/etc:relative")


def test_bad_log_options_are_refused_at_create_in_dockerds_words():
    from engine.containers.spec import LogConfig

    host = HostConfig(log_config=LogConfig(type="json-file", options={"max-size": "-1"}))
    with pytest.raises(errors.InvalidParameter) as info:
        validate_host_config(host)
    assert info.value.message == "failed to initialize logging driver: invalid size: '-1'"


@pytest.mark.parametrize("value, shown", [(0, None), (-1, None), (-5, None), (None, None), (7, 7)])
def test_pids_limit_of_zero_or_less_is_no_limit(value, shown):
    _, host = create_request({"Image": "busybox", "HostConfig": {"PidsLimit": value}})
    assert host.resources.pids_limit == shown and host_config_shape(host)["PidsLimit"] == shown


def test_negative_shm_size_is_refused():
    _, host = create_request({"Image": "busybox", "HostConfig": {"ShmSize": -1}})
    with pytest.raises(errors.InvalidParameter, match="^SHM size can not be less than 0$"):
        validate_host_config(host)
