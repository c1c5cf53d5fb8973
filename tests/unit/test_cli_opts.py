"""`run`/`create` flags -> the POST /containers/create body, and argument splitting."""

import pytest

from engine.cli import main
from engine.cli._app import REGISTRY, split_argv
from engine.cli._opts import (OptError, build_create_body, parse_publish, parse_restart,
                              parse_volumes)


def parse_run(argv):
    from engine.cli import _containers  # noqa: F401  (registers commands)

    cmd = REGISTRY["run"]
    parser = cmd.parser()
    head, tail = split_argv(parser, argv, cmd.stop_after)
    args = parser.parse_args(head)
    return args, tail


def body_for(argv):
    args, tail = parse_run(argv)
    return build_create_body(args, tail)


def test_run_body_exact():
    body = body_for(["-e", "A=1", "--memory", "64m", "--cpus", "0.5", "--restart",
                     "on-failure:3", "-p", "8080:80", "busybox", "echo", "hi"])
    assert body == {
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": False, "AttachStdout": True, "AttachStderr": True,
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": ["A=1"], "Cmd": ["echo", "hi"], "Image": "busybox", "Volumes": {},
        "WorkingDir": "", "Entrypoint": None, "Labels": {},
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {
            "Binds": [], "NetworkMode": "default",
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "AutoRemove": False, "CapAdd": [], "CapDrop": [], "Privileged": False,
            "ReadonlyRootfs": False, "PublishAllPorts": False,
            "LogConfig": {"Type": "", "Config": {}},
            "Memory": 67108864, "MemorySwap": 0, "MemoryReservation": 0,
            "NanoCpus": 500000000, "CpuShares": 0, "CpuPeriod": 0, "CpuQuota": 0,
            "CpusetCpus": "",
        },
        "NetworkingConfig": {"EndpointsConfig": {}},
    }


def test_options_after_image_belong_to_the_command():
    args, tail = parse_run(["-it", "--rm", "busybox", "ls", "-l", "--name", "x"])
    assert args.interactive and args.tty and args.rm and args.name is None
    assert args.image == "busybox"
    assert tail == ["ls", "-l", "--name", "x"]


def test_attached_short_values_and_hostname():
    args, tail = parse_run(["-dp8080:80", "-eX=1", "--env=Y=2", "-h", "box.example",
                            "-m", "1g", "img"])
    assert args.detach and args.publish == ["8080:80"] and args.env == ["X=1", "Y=2"]
    body = build_create_body(args, tail)
    assert body["Hostname"] == "box" and body["Domainname"] == "example"
    assert body["HostConfig"]["Memory"] == 1 << 30
    assert body["AttachStdout"] is False and body["Cmd"] is None


def test_full_flags():
    body = body_for(["-i", "-u", "1000:1000", "-w", "/tmp", "--entrypoint", "", "-l", "a=b",
                     "--network", "none", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
                     "--privileged", "--read-only", "--memory-swap", "-1", "--cpu-shares",
                     "512", "--pids-limit", "100", "--log-opt", "max-size=10m",
                     "--stop-signal", "SIGINT", "--stop-timeout", "3", "-v",
                     "/src:/dst:ro", "-v", "/anon", "--tmpfs", "/run:size=1m", "img"])
    hc = body["HostConfig"]
    assert body["User"] == "1000:1000" and body["WorkingDir"] == "/tmp"
    assert body["Entrypoint"] == [""]
    assert body["OpenStdin"] and body["AttachStdin"] and body["StdinOnce"]
    assert body["Labels"] == {"a": "b"} and body["Volumes"] == {"/anon": {}}
    assert body["StopSignal"] == "SIGINT" and body["StopTimeout"] == 3
    assert hc["NetworkMode"] == "none" and hc["CapAdd"] == ["NET_ADMIN"]
    assert hc["CapDrop"] == ["ALL"] and hc["Privileged"] and hc["ReadonlyRootfs"]
    assert hc["MemorySwap"] == -1 and hc["CpuShares"] == 512 and hc["PidsLimit"] == 100
    assert hc["LogConfig"] == {"Type": "", "Config": {"max-size": "10m"}}
    assert hc["Binds"] == ["/src:/dst:ro"] and hc["Tmpfs"] == {"/run": "size=1m"}


@pytest.mark.parametrize("spec, mapping", [
    ("/dev/fuse", ("/dev/fuse", "/dev/fuse", "rwm")),
    ("/dev/sda:/dev/xvda", ("/dev/sda", "/dev/xvda", "rwm")),
    ("/dev/sda:r", ("/dev/sda", "/dev/sda", "r")),
    ("/dev/sda:/dev/xvda:rw", ("/dev/sda", "/dev/xvda", "rw")),
])
def test_device_forms(spec, mapping):
    hc = body_for(["--device", spec, "--device-cgroup-rule", "c 42:* rmw", "img"])["HostConfig"]
    assert hc["Devices"] == [dict(zip(("PathOnHost", "PathInContainer", "CgroupPermissions"), mapping))]
    assert hc["DeviceCgroupRules"] == ["c 42:* rmw"]


def test_env_file_and_passthrough(tmp_path, monkeypatch):
    f = tmp_path / "env"
    f.write_text("# comment\n\nB=2\nFROM_HOST\nUNSET_ONE\n")
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    body = body_for(["--env-file", str(f), "-e", "FROM_HOST", "img"])
    assert body["Env"] == ["B=2", "FROM_HOST=yes", "FROM_HOST=yes"]


@pytest.mark.parametrize("policy,expected", [
    ("no", {"Name": "no", "MaximumRetryCount": 0}),
    ("always", {"Name": "always", "MaximumRetryCount": 0}),
    ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
    ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
    ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
])
def test_restart_policy(policy, expected):
    assert parse_restart(policy) == expected


@pytest.mark.parametrize("policy", ["sometimes", "always:3", "on-failure:x"])
def test_restart_policy_bad(policy):
    with pytest.raises(OptError):
        parse_restart(policy)


def test_publish_forms():
    exposed, bindings = parse_publish(["127.0.0.1:8080:80/udp", "9000-9001:90-91", "53",
                                       "[::1]:7000:70"])
    assert exposed == {"80/udp": {}, "90/tcp": {}, "91/tcp": {}, "53/tcp": {}, "70/tcp": {}}
    assert bindings["80/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "8080"}]
    assert bindings["91/tcp"] == [{"HostIp": "", "HostPort": "9001"}]
    assert bindings["53/tcp"] == [{"HostIp": "", "HostPort": ""}]
    assert bindings["70/tcp"] == [{"HostIp": "::1", "HostPort": "7000"}]
    with pytest.raises(OptError):
        parse_publish(["a:b:c:d"])


def test_volumes_relative_paths_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    binds, vols = parse_volumes(["./data:/data", "named:/x:ro"])
    assert binds == [f"{tmp_path}/data:/data", "named:/x:ro"] and vols == {}


def test_kernel_knob_flags():
    host = body_for(["--sysctl", "net.ipv4.ip_forward=1", "--oom-score-adj", "-1", "--oom-kill-disable",
                     "--memory-swappiness", "0", "--cgroup-parent", "/mine", "--cgroupns", "host",
                     "--blkio-weight-device", "/dev/vda:300", "--device-read-bps", "/dev/vda:1mb",
                     "--device-write-iops", "/dev/vda:50", "busybox"])["HostConfig"]
    assert {k: host[k] for k in ("Sysctls", "OomScoreAdj", "OomKillDisable", "MemorySwappiness", "CgroupParent",
                                 "CgroupnsMode", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteIOps")} == {
        "Sysctls": {"net.ipv4.ip_forward": "1"}, "OomScoreAdj": -1, "OomKillDisable": True,
        "MemorySwappiness": 0, "CgroupParent": "/mine", "CgroupnsMode": "host",
        "BlkioWeightDevice": [{"Path": "/dev/vda", "Weight": 300}],
        "BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": 1 << 20}],
        "BlkioDeviceWriteIOps": [{"Path": "/dev/vda", "Rate": 50}],
    }
    assert "MemorySwappiness" not in body_for(["busybox"])["HostConfig"]


@pytest.mark.parametrize("argv,message", [
    (["--sysctl", "kernel.panic=1", "busybox"],
     'pyengine: invalid argument "kernel.panic=1" for "--sysctl" flag: sysctl \'kernel.panic=1\' is not whitelisted.'),
    (["--cgroupns", "shared", "busybox"], "pyengine: --cgroupns: invalid CGROUP mode: shared."),
    (["--device-read-bps", "vda:1mb", "busybox"],
     'pyengine: invalid argument "vda:1mb" for "--device-read-bps" flag: bad format for device path: vda:1mb.'),
    (["--blkio-weight-device", "/dev/vda:5", "busybox"],
     'pyengine: invalid argument "/dev/vda:5" for "--blkio-weight-device" flag: invalid weight for device: /dev/vda:5.'),
])
def test_bad_kernel_knob_flags_exit_125(argv, message, capsys, tmp_path):
    assert main(["-H", f"unix://{tmp_path}/none.sock", "run", *argv]) == 125
    assert capsys.readouterr().err.splitlines()[0] == message


@pytest.mark.parametrize("argv,message", [
    (["--memory", "64x", "busybox"],
     'pyengine: invalid argument "64x" for "-m, --memory" flag: invalid size: \'64x\'.'),
    (["--restart", "sometimes", "busybox"], "pyengine: invalid restart policy sometimes."),
    (["--cpus", "lots", "busybox"],
     'pyengine: invalid argument "lots" for "--cpus" flag: failed to parse lots as a '
     'rational number.'),
    (["--rm", "--restart", "always", "busybox"],
     "pyengine: Conflicting options: --restart and --rm."),
    (["--device", "/dev/a:/dev/b:rwx", "busybox"], "pyengine: invalid device specification: /dev/a:/dev/b:rwx."),
])
def test_bad_values_exit_125(argv, message, capsys, tmp_path):
    # parsing fails before any connection is attempted
    assert main(["-H", f"unix://{tmp_path}/none.sock", "run", *argv]) == 125
    err = capsys.readouterr().err.splitlines()
    assert err == [message, "See 'pyengine run --help'."]


def test_unknown_flag_exit_125(capsys):
    assert main(["ps", "--bogus"]) == 125
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err
    assert "See 'pyengine ps --help'." in err


def test_version_flag(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("pyengine version ")


def test_init_flag_is_sent_only_when_given():
    assert body_for(["--init", "img"])["HostConfig"]["Init"] is True
    assert "Init" not in body_for(["img"])["HostConfig"]
