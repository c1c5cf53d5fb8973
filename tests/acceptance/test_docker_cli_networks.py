"""The real docker CLI's `docker network …` and `docker run -p` against a private pyengined."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import needs_root

DOCKER = shutil.which("docker")
pytestmark = [needs_root, pytest.mark.acceptance,
              pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")]


@pytest.fixture
def docker(daemon):
    containers: list[str] = []
    networks: list[str] = []

    def run(*args, timeout=60, check=True):
        result = subprocess.run([DOCKER, *args], env=daemon.env(), capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr, daemon.log()[-2000:])
        return result

    run.containers, run.networks = containers, networks
    yield run
    for name in containers:
        run("rm", "-f", name, check=False)
    for name in networks:
        run("network", "rm", name, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_docker_network_lifecycle(docker):
    docker.networks.append("dk-appnet")
    net_id = docker("network", "create", "--label", "team=a", "dk-appnet").stdout.strip()
    assert len(net_id) == 64
    listed = docker("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert "dk-appnet bridge" in listed and "bridge bridge" in listed and "host host" in listed
    info = json.loads(docker("network", "inspect", "dk-appnet").stdout)[0]
    assert info["Id"] == net_id and info["IPAM"]["Config"][0]["Subnet"]
    assert "already exists" in docker("network", "create", "dk-appnet", check=False).stderr
    for name in ("bridge", "host", "none", "default"):  # dockerd's 403 before any duplicate check
        refused = docker("network", "create", name, check=False)
        assert f"operation is not permitted on predefined {name} network" in refused.stderr, refused.stderr

    docker.containers += ["dk-db", "dk-web"]
    docker("run", "-d", "--network", "dk-appnet", "--name", "dk-db", "busybox", "sleep", "60")
    out = docker("run", "--rm", "--network", "dk-appnet", "busybox", "ping", "-c1", "-W3", "dk-db").stdout
    assert "1 packets received" in out
    docker("run", "-d", "--name", "dk-web", "busybox", "sleep", "60")
    docker("network", "connect", "--alias", "front", "dk-appnet", "dk-web")
    assert "1 packets received" in docker("exec", "dk-db", "ping", "-c1", "-W3", "front").stdout
    nets = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", "dk-web").stdout)
    assert set(nets) == {"bridge", "dk-appnet"}
    docker("network", "disconnect", "dk-appnet", "dk-web")
    assert docker("network", "rm", "dk-appnet", check=False).returncode != 0  # dk-db is on it
    docker("rm", "-f", "dk-db", "dk-web")
    docker("network", "rm", "dk-appnet")
    docker("network", "create", "dk-unused")
    # As dockerd: a network only a stopped container is on is unused (no active endpoint),
    # and that container's next start fails on it.
    docker("network", "create", "dk-stopped-on")
    docker.containers += ["dk-was-on"]
    docker("run", "--name", "dk-was-on", "--network", "dk-stopped-on", "busybox", "true")
    net_id = docker("network", "inspect", "-f", "{{.Id}}", "dk-stopped-on").stdout.strip()
    assert "dk-stopped-on" in docker("network", "ls", "-q", "--filter", "dangling=true", "--format", "{{.Name}}").stdout
    out = docker("network", "prune", "-f").stdout
    assert "dk-unused" in out and "dk-stopped-on" in out
    refused = docker("start", "dk-was-on", check=False)
    assert refused.returncode != 0 and f"network {net_id} not found" in refused.stderr, refused.stderr


def test_docker_run_publish(docker, tmp_path):
    port = _free_port()
    (tmp_path / "index.html").write_text("published\n")
    docker.containers.append("dk-httpd")
    docker("run", "-d", "--name", "dk-httpd", "-p", f"127.0.0.1:{port}:80", "-v", f"{tmp_path}:/www",
           "busybox", "httpd", "-f", "-p", "80", "-h", "/www")
    deadline = time.monotonic() + 10
    while True:
        try:
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read() == b"published\n"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert docker("port", "dk-httpd").stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert f"127.0.0.1:{port}->80/tcp" in docker("ps", "--format", "{{.Ports}}").stdout


def test_docker_network_flags_ipv6_ipam_links(docker):
    """`docker network create/connect/disconnect/inspect/prune` with their addressing flags, and
    `docker run --link` / `docker rm --link` (unique-local IPv6 subnet made here)."""
    docker.networks.append("dk-v6")
    docker("network", "create", "--ipv6", "--subnet", "fd5e:c0de:99::/64", "--subnet", "10.250.71.0/24",
           "--ip-range", "10.250.71.64/26", "--gateway", "10.250.71.1", "--aux-address", "r=10.250.71.65",
           "--ipam-opt", "x=1", "-o", "com.docker.network.driver.mtu=1400", "--label", "t=v6", "dk-v6")
    info = json.loads(docker("network", "inspect", "dk-v6").stdout)[0]
    assert info["EnableIPv6"] is True and info["IPAM"]["Options"] == {"x": "1"}
    assert info["IPAM"]["Config"] == [
        {"Subnet": "10.250.71.0/24", "IPRange": "10.250.71.64/26", "Gateway": "10.250.71.1",
         "AuxiliaryAddresses": {"r": "10.250.71.65"}},
        {"Subnet": "fd5e:c0de:99::/64"}]
    docker.containers += ["dk-v6a", "dk-v6b"]
    docker("run", "-d", "--network", "dk-v6", "--ip6", "fd5e:c0de:99::a", "--name", "dk-v6a", "busybox", "sleep", "60")
    docker("run", "-d", "--name", "dk-v6b", "busybox", "sleep", "60")
    docker("network", "connect", "--ip", "10.250.71.100", "--ip6", "fd5e:c0de:99::b", "--alias", "bee",
           "--link", "dk-v6a:ay", "--link-local-ip", "169.254.9.9", "dk-v6", "dk-v6b")
    addrs = docker("exec", "dk-v6b", "ip", "addr", "show", "eth1").stdout
    assert "10.250.71.100/24" in addrs and "fd5e:c0de:99::b/64" in addrs and "169.254.9.9/16" in addrs
    assert "mtu 1400" in addrs
    assert "1 packets received" in docker("exec", "dk-v6b", "ping6", "-c1", "-W3", "ay").stdout
    assert "fd5e:c0de:99::b" in docker("exec", "dk-v6a", "nslookup", "-type=AAAA", "bee").stdout
    assert docker("exec", "dk-v6a", "nslookup", "ay", check=False).returncode != 0  # link: dk-v6b's only
    ep = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", "dk-v6b").stdout)["dk-v6"]
    assert ep["Links"] == ["dk-v6a:ay"] and ep["GlobalIPv6Address"] == "fd5e:c0de:99::b"
    docker("network", "disconnect", "-f", "dk-v6", "dk-v6b")
    assert docker("network", "disconnect", "-f", "dk-v6", "dk-v6b", check=False).returncode != 0
    # legacy links on the default bridge
    docker.containers += ["dk-lweb"]
    out = docker("run", "--name", "dk-lweb", "--link", "dk-v6b:store", "busybox", "sh", "-c",
                 "grep store /etc/hosts; echo $STORE_NAME").stdout
    assert "store" in out.splitlines()[0] and "/dk-lweb/store" in out
    docker("rm", "--link", "/dk-lweb/store")
    assert json.loads(docker("inspect", "-f", "{{json .HostConfig.Links}}", "dk-lweb").stdout) is None
    docker("rm", "-f", "dk-v6a")
    docker("network", "create", "--label", "keep=1", "dk-keep")
    docker.networks.append("dk-keep")
    out = docker("network", "prune", "-f", "--filter", "label!=keep=1").stdout
    assert "dk-v6" in out and "dk-keep" not in out
