"""A pyengined configured by its daemon.json (dockerd's keys), seen through the real docker
CLI: the daemon's log options, DNS, /dev/shm size and ulimits reach containers that do not
set their own, networks take subnets from its address pools, `docker info` shows them; a
bad file stops the daemon before it touches anything."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import needs_root, private_daemon, wait_for

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]

DAEMON_JSON = {
    "log-opts": {"max-size": "1m", "max-file": "2"},
    "dns": ["10.9.9.9"],
    "dns-search": ["corp.example"],
    "dns-opts": ["ndots:2"],
    "default-shm-size": "32M",
    "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}},
    "default-address-pools": [{"base": "10.213.0.0/16", "size": 24}],
    "labels": ["team=infra"],
    "insecure-registries": ["10.55.0.0/16", "myreg.example:5000"],
    # dockerd's keys with the values this engine has, and those it honours
    "storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"], "experimental": False,
    "log-level": "warn", "max-concurrent-downloads": 2, "default-cgroupns-mode": "host", "mtu": 1400,
    "init": True, "no-new-privileges": True, "default-ipc-mode": "shareable", "icc": False, "ip": "127.0.0.1",
    "group": 4321,
}


@pytest.fixture(scope="module")
def configured():
    def prepare(handle):
        with open(handle.config_file, "w") as f:
            json.dump({**DAEMON_JSON, "pidfile": os.path.join(handle.root, "pyengined.pid")}, f)

    with private_daemon(prefix="pe-conf-", prepare=prepare) as handle:
        yield handle


@pytest.fixture
def docker(configured):
    names: list[str] = []

    def run(*args, check=True):
        result = subprocess.run([DOCKER, *args], env=configured.env(), capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr, configured.log()[-2000:])
        return result

    run.names, run.env = names, configured.env()
    yield run
    for name in names:
        run("rm", "-f", name, check=False)
    for name in ("pe-conf-net1", "pe-conf-net2"):
        run("network", "rm", name, check=False)


def test_info_shows_the_daemons_configuration(docker):
    info = json.loads(docker("info", "--format", "{{json .}}").stdout)
    assert info["LoggingDriver"] == "json-file"
    assert info["Labels"] == ["team=infra"]
    assert info["DefaultAddressPools"] == [{"Base": "10.213.0.0/16", "Size": 24}]
    registry = info["RegistryConfig"]
    assert registry["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.55.0.0/16"]
    assert registry["IndexConfigs"]["myreg.example:5000"]["Secure"] is False
    shown = docker("info").stdout
    assert "team=infra" in shown and "myreg.example:5000" in shown
    # pyengine info shows them as the docker CLI does, from " Labels:" to the pools
    ours = subprocess.run([sys.executable, "-m", "engine.cli", "info"], env=docker.env, capture_output=True,
                          text=True, timeout=60).stdout

    def block(text):
        lines = text.splitlines()
        start = lines.index(" Labels:")
        return [line for line in lines[start:] if line.strip() and not line.startswith("WARNING")]

    assert block(ours) == block(shown)
    assert block(ours)[-2:] == [" Default Address Pools:", "   Base: 10.213.0.0/16, Size: 24"]


def test_containers_get_the_daemons_defaults_under_their_own(docker):
    out = docker("run", "--rm", "--pull", "never", "busybox", "sh", "-c",
                 "cat /etc/resolv.conf; ulimit -Sn; ulimit -Hn; df -k /dev/shm | tail -1").stdout.splitlines()
    assert out[:3] == ["search corp.example", "nameserver 10.9.9.9", "options ndots:2"]
    assert out[3:5] == ["1024", "2048"]
    assert out[5].split()[1] == "32768"  # KiB of /dev/shm
    own = docker("run", "--rm", "--pull", "never", "--ulimit", "nofile=500:600", "--shm-size", "8m",
                 "--dns", "10.8.8.8", "busybox", "sh", "-c",
                 "ulimit -Sn; grep nameserver /etc/resolv.conf; df -k /dev/shm | tail -1").stdout.splitlines()
    assert own[:2] == ["500", "nameserver 10.8.8.8"] and own[2].split()[1] == "8192"

    docker.names += ["pe-conf-a", "pe-conf-b", "pe-conf-c"]
    docker("create", "--name", "pe-conf-a", "busybox", "true")
    docker("create", "--name", "pe-conf-b", "--log-opt", "max-size=5m", "busybox", "true")
    docker("create", "--name", "pe-conf-c", "--log-driver", "none", "busybox", "true")

    def host_config(name):
        return json.loads(docker("inspect", "--format", "{{json .HostConfig}}", name).stdout)

    a, b, c = (host_config(n) for n in ("pe-conf-a", "pe-conf-b", "pe-conf-c"))
    assert a["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert a["ShmSize"] == 32 << 20 and a["Dns"] == [] and a["Ulimits"] in (None, [])
    assert b["LogConfig"]["Config"] == {"max-size": "5m", "max-file": "2"}
    assert c["LogConfig"] == {"Type": "none", "Config": {}}
    assert (a["CgroupnsMode"], c["CgroupnsMode"]) == ("host", "host")
    assert a["IpcMode"] == "shareable" and a.get("Init") is None  # the daemon's --init applies at start


def test_init_and_no_new_privileges_by_default_unless_the_container_says(docker):
    def pid1_and_nnp(*flags):
        out = docker("run", "--rm", "--pull", "never", *flags, "busybox", "sh", "-c",
                     "tr '\\0' ' ' < /proc/1/cmdline; echo; grep NoNewPrivs /proc/self/status").stdout
        return out.splitlines()

    cmdline, nnp = pid1_and_nnp()
    assert cmdline.startswith("/sbin/docker-init -- sh -c") and nnp.split() == ["NoNewPrivs:", "1"]
    cmdline, nnp = pid1_and_nnp("--init=false", "--security-opt", "no-new-privileges=false")
    assert cmdline.startswith("sh -c") and nnp.split() == ["NoNewPrivs:", "0"]

    # docker exec runs with the container's no_new_privs (dockerd starts it from the
    # container's process spec), whatever the exec asks for.
    docker.names += ["pe-conf-nnp", "pe-conf-nnp-off"]
    docker("run", "-d", "--name", "pe-conf-nnp", "--pull", "never", "busybox", "sleep", "600")
    docker("run", "-d", "--name", "pe-conf-nnp-off", "--pull", "never", "--security-opt", "no-new-privileges=false",
           "busybox", "sleep", "600")
    for name, flags, want in (("pe-conf-nnp", (), "1"), ("pe-conf-nnp", ("--privileged",), "1"),
                              ("pe-conf-nnp-off", (), "0")):
        out = docker("exec", *flags, name, "grep", "NoNewPrivs", "/proc/self/status").stdout
        assert out.split() == ["NoNewPrivs:", want], (name, flags, out)


def test_icc_off_and_the_default_binding_address(docker):
    docker.names += ["pe-conf-web"]
    docker("run", "-d", "--name", "pe-conf-web", "--pull", "never", "-p", "80", "busybox",
           "sh", "-c", "echo hi > /i; httpd -f -p 80 -h /")
    options = json.loads(docker("network", "inspect", "--format", "{{json .Options}}", "bridge").stdout)
    assert options["com.docker.network.bridge.enable_icc"] == "false"
    assert options["com.docker.network.bridge.host_binding_ipv4"] == "127.0.0.1"
    assert docker("port", "pe-conf-web", "80").stdout.startswith("127.0.0.1:")
    ip = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "pe-conf-web").stdout.strip()
    reached = docker("run", "--rm", "--pull", "never", "busybox", "wget", "-T", "2", "-qO-", f"http://{ip}/i",
                     check=False)
    assert reached.returncode != 0 and reached.stdout == ""


def test_pidfile_and_socket_group(configured):
    with open(os.path.join(configured.root, "pyengined.pid")) as f:
        assert int(f.read()) == configured.process.pid
    assert os.stat(configured.socket).st_gid == 4321
    # a second daemon naming a live process's pid file is refused
    root = tempfile.mkdtemp(prefix="pe-conf-pid-")
    try:
        result = subprocess.run([sys.executable, "-m", "engine.daemon", "--data-root", os.path.join(root, "data"),
                                 "--exec-root", os.path.join(root, "exec"), "-H", f"unix://{root}/s.sock",
                                 "--config-file", configured.config_file],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "pid file found, ensure pyengined is not running or delete" in result.stderr
        assert not os.path.exists(os.path.join(root, "s.sock"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_default_cgroupns_mode_and_mtu(docker):
    """host cgroupns: the container sees its cgroup's full path; the default bridge (and the
    container's end of it) has the daemon's MTU."""
    out = docker("run", "--rm", "--pull", "never", "busybox", "sh", "-c",
                 "grep -E '^[0-9]+:(memory|pids):' /proc/self/cgroup; cat /sys/class/net/eth0/mtu").stdout.splitlines()
    assert out[-1] == "1400"
    assert all(line.split(":", 2)[2] != "/" for line in out[:-1]) and out[:-1], out
    private = docker("run", "--rm", "--pull", "never", "--cgroupns", "private", "busybox",
                     "grep", "-E", "^[0-9]+:memory:", "/proc/self/cgroup").stdout.strip()
    assert private.endswith(":/"), private
    options = json.loads(docker("network", "inspect", "--format", "{{json .Options}}", "bridge").stdout)
    assert options["com.docker.network.driver.mtu"] == "1400"


def test_networks_take_subnets_from_the_default_pools(docker):
    pool = ipaddress.ip_network("10.213.0.0/16")
    subnets = []
    for name in ("pe-conf-net1", "pe-conf-net2"):
        docker("network", "create", name)
        config = json.loads(docker("network", "inspect", "--format", "{{json .IPAM.Config}}", name).stdout)
        subnets.append(ipaddress.ip_network(config[0]["Subnet"]))
    assert all(s.subnet_of(pool) and s.prefixlen == 24 for s in subnets) and subnets[0] != subnets[1]
    bridge = json.loads(docker("network", "inspect", "--format", "{{json .IPAM.Config}}", "bridge").stdout)
    assert ipaddress.ip_network(bridge[0]["Subnet"]).subnet_of(pool)
    # on a user network the embedded DNS answers; the daemon's search and options stay
    resolv = docker("run", "--rm", "--pull", "never", "--network", "pe-conf-net1", "busybox",
                    "cat", "/etc/resolv.conf").stdout.splitlines()
    assert resolv == ["search corp.example", f"nameserver {next(subnets[0].hosts())}", "options ndots:2"]


def test_a_bad_config_file_stops_the_daemon_before_it_starts():
    root = tempfile.mkdtemp(prefix="pe-conf-bad-")
    try:
        path = os.path.join(root, "daemon.json")
        with open(path, "w") as f:
            json.dump({"log-opts": {"max-size": "1m"}, "dnss": ["10.0.0.1"]}, f)
        data_root = os.path.join(root, "data")
        result = subprocess.run([sys.executable, "-m", "engine.daemon", "--data-root", data_root,
                                 "--exec-root", os.path.join(root, "exec"), "-H", f"unix://{root}/s.sock",
                                 "--config-file", path], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr == (f"pyengined: unable to configure the daemon with file {path}: the following "
                                 "directives don't match any configuration option: dnss\n")
        assert sorted(os.listdir(root)) == ["daemon.json"]  # no data root, exec root or socket
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_hub_images_come_from_the_registry_mirror_first(daemon, tmp_path):
    """busybox pushed to a local registry as library/busybox; a daemon with it as its mirror
    pulls `busybox:<tag>` from there. Whatever would go on to Docker Hub goes to a closed
    local proxy port instead, so a fallback shows as that failure and never leaves the host."""
    from registry_util import start_registry

    registry = start_registry()
    tag = f"mirrored-{os.urandom(3).hex()}"
    pushed = f"{registry.host}/library/busybox:{tag}"

    def docker(d, *args, check=True):
        env = {**d.env(), "DOCKER_CONFIG": str(tmp_path / "docker-config")}
        result = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr, d.log()[-2000:])
        return result

    def prepare(handle):
        with open(handle.config_file, "w") as f:
            json.dump({"registry-mirrors": [f"http://{registry.host}"]}, f)
        handle.extra_env = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}

    try:
        docker(daemon, "tag", "busybox", pushed)
        docker(daemon, "push", pushed)
        with private_daemon(prefix="pe-mirror-", bootstrap=False, prepare=prepare) as mirrored:
            info = json.loads(docker(mirrored, "info", "--format", "{{json .RegistryConfig}}").stdout)
            assert info["Mirrors"] == [f"http://{registry.host}/"]
            assert info["IndexConfigs"]["docker.io"]["Mirrors"] == [f"http://{registry.host}/"]
            docker(mirrored, "pull", f"busybox:{tag}")
            image = json.loads(docker(mirrored, "image", "inspect", f"busybox:{tag}").stdout)[0]
            assert image["RepoTags"] == [f"busybox:{tag}"]
            assert image["RepoDigests"][0].startswith("busybox@sha256:")
            assert docker(mirrored, "run", "--rm", "--pull", "never", f"busybox:{tag}", "echo", "hi").stdout == "hi\n"
            # not on the mirror: on to the Hub, here the closed proxy port
            missing = docker(mirrored, "pull", "busybox:not-on-the-mirror", check=False)
            assert missing.returncode != 0
            # (refused by the closed proxy port: a lookup of the Hub would say "no such host")
            assert "registry-1.docker.io" in missing.stderr and "connection refused" in missing.stderr, missing.stderr
            assert f"mirror http://{registry.host}/" in mirrored.log()
    finally:
        docker(daemon, "rmi", pushed, check=False)
        registry.stop()


def test_a_stop_without_live_restore_stops_containers_as_docker_stop():
    """SIGTERM to a daemon without live restore: each container gets its stop signal and
    its stop timeout (a trapping shell exits 0 and logs it; a `sleep` that ignores TERM is
    killed after --stop-timeout 1); nothing is restarted then, and an `always` container is
    started again by the next daemon."""
    def prepare(handle):
        with open(handle.config_file, "w") as f:
            json.dump({"live-restore": False, "shutdown-timeout": 3}, f)

    with private_daemon(prefix="pe-shutdown-", prepare=prepare) as d:
        def docker(*args, check=True):
            result = subprocess.run([DOCKER, *args], env=d.env(), capture_output=True, text=True, timeout=60)
            assert result.returncode == 0 or not check, (args, result.stderr, d.log()[-2000:])
            return result

        trapping = "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done"
        docker("run", "-d", "--name", "graceful", "--pull", "never", "busybox", "sh", "-c", trapping)
        docker("run", "-d", "--name", "stubborn", "--stop-timeout", "1", "--pull", "never", "busybox", "sleep", "1000")
        docker("run", "-d", "--name", "always", "--restart", "always", "--pull", "never", "busybox",
               "sh", "-c", "trap 'exit 3' TERM; echo up; while true; do sleep 0.1; done")
        wait_for(lambda: "ready" in docker("logs", "graceful").stdout and "up" in docker("logs", "always").stdout,
                 what="both shells to trap TERM")
        d.stop()
        assert d.process.returncode == 0
        assert "stopping 3 running containers" in d.log()
        d.start()
        states = {name: json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
                  for name in ("graceful", "stubborn", "always")}
        assert (states["graceful"]["Status"], states["graceful"]["ExitCode"]) == ("exited", 0)
        assert docker("logs", "graceful").stdout.splitlines() == ["ready", "got TERM"]
        assert (states["stubborn"]["Status"], states["stubborn"]["ExitCode"]) == ("exited", 137)
        assert states["always"]["Status"] == "running"  # by the new daemon's restart policy
        assert docker("logs", "always").stdout.splitlines() == ["up", "up"]
        docker("rm", "-f", "graceful", "stubborn", "always")


def test_sighup_reloads_what_dockerd_reloads():
    """SIGHUP: labels, debug, insecure registries, mirrors, shutdown-timeout… from the file
    again (docker info shows them, a `daemon reload` event tells), a change of another option
    is logged as waiting for a restart, and a bad file changes nothing."""
    def prepare(handle):
        with open(handle.config_file, "w") as f:
            json.dump({"labels": ["a=1"]}, f)

    with private_daemon(prefix="pe-reload-", bootstrap=False, prepare=prepare) as d:
        def info():
            result = subprocess.run([DOCKER, "info", "--format", "{{json .}}"], env=d.env(), capture_output=True,
                                    text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        before = info()
        assert before["Labels"] == ["a=1"] and before["Debug"] is False and before["ID"]
        with open(d.config_file, "w") as f:
            json.dump({"labels": ["a=2", "b=3"], "debug": True, "insecure-registries": ["10.66.0.0/16"],
                       "registry-mirrors": ["http://127.0.0.1:1"], "shutdown-timeout": 5, "dns": ["10.1.1.1"]}, f)
        d.process.send_signal(signal.SIGHUP)
        wait_for(lambda: info()["Labels"] == ["a=2", "b=3"], what="the labels reloaded")
        after = info()
        assert after["Debug"] is True and after["ID"] == before["ID"]
        assert "10.66.0.0/16" in after["RegistryConfig"]["InsecureRegistryCIDRs"]
        assert after["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:1/"]
        assert "these change only at a restart: dns" in d.log()
        events = subprocess.run([DOCKER, "events", "--since", "0", "--until", str(int(time.time()) + 1),
                                 "--filter", "type=daemon", "--format", "{{json .}}"], env=d.env(),
                                capture_output=True, text=True, timeout=60)
        reloads = [json.loads(line) for line in events.stdout.splitlines()]
        assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in reloads] == [("daemon", "reload", before["ID"])]
        attributes = reloads[0]["Actor"]["Attributes"]
        assert attributes["labels"] == "[a=2 b=3]" and attributes["shutdown-timeout"] == "5"
        # a bad file: logged, nothing changes
        with open(d.config_file, "w") as f:
            f.write('{"labels": ["c=4"], "bogus": 1}')
        d.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration not reloaded" in d.log(), what="the refusal logged")
        assert "don't match any configuration option: bogus" in d.log()
        assert info()["Labels"] == ["a=2", "b=3"]


def test_the_daemons_seccomp_profile_is_the_containers_default(tmp_path):
    """seccomp-profile: a file whose profile refuses mkdir is what containers get unless they
    name one (seccomp=unconfined, or builtin: Docker's, which allows mkdir)."""
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))

    def prepare(handle):
        with open(handle.config_file, "w") as f:
            json.dump({"seccomp-profile": str(profile)}, f)

    with private_daemon(prefix="pe-seccomp-", prepare=prepare) as d:
        def mkdir(*flags):
            return subprocess.run([DOCKER, "run", "--rm", "--pull", "never", *flags, "busybox", "mkdir", "/made"],
                                  env=d.env(), capture_output=True, text=True, timeout=60)

        refused = mkdir()
        assert refused.returncode == 1 and "Operation not permitted" in refused.stderr
        assert mkdir("--security-opt", "seccomp=unconfined").returncode == 0
        assert mkdir("--security-opt", "seccomp=builtin").returncode == 0
        shown = subprocess.run([DOCKER, "info", "--format", "{{json .SecurityOptions}}"], env=d.env(),
                               capture_output=True, text=True, timeout=60).stdout
        assert f"name=seccomp,profile={profile}" in json.loads(shown)
    # a profile that is not there stops the daemon before it starts
    root = tempfile.mkdtemp(prefix="pe-seccomp-bad-")
    try:
        result = subprocess.run([sys.executable, "-m", "engine.daemon", "--data-root", os.path.join(root, "data"),
                                 "-H", f"unix://{root}/s.sock", "--config-file", os.devnull,
                                 "--seccomp-profile", os.path.join(root, "missing.json")],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert "opening seccomp profile" in result.stderr and "No such file or directory" in result.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_daemons_proxy_carries_its_registry_traffic():
    """proxies.https-proxy: a pull from Docker Hub goes to the proxy (here a closed local
    port: refused at once, no lookup of the Hub), docker info shows it without credentials."""
    def prepare(handle):
        with open(handle.config_file, "w") as f:
            json.dump({"proxies": {"https-proxy": "http://bob:secret@127.0.0.1:9", "no-proxy": "localhost"}}, f)

    with private_daemon(prefix="pe-proxy-", bootstrap=False, prepare=prepare) as d:
        def docker(*args):
            return subprocess.run([DOCKER, *args], env=d.env(), capture_output=True, text=True, timeout=120)

        info = json.loads(docker("info", "--format", "{{json .}}").stdout)
        assert (info["HttpsProxy"], info["NoProxy"]) == ("http://xxxxx:xxxxx@127.0.0.1:9", "localhost")
        pulled = docker("pull", "busybox:proxied")
        assert pulled.returncode != 0
        assert "registry-1.docker.io" in pulled.stderr and "connection refused" in pulled.stderr, pulled.stderr
