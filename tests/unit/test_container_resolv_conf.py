"""A container's resolv.conf as dockerd writes it (checked side by side): the host's file
without loopback resolvers, Docker's public defaults when none is left, verbatim for the host's
network; with --dns/--dns-search/--dns-opt, search, nameserver and options lines from those and
the host's. It follows the host's file, also when that changes between two creates (it is read
again only when it changed)."""

import os

import pytest

from engine.containers import HostConfig
from engine.containers import config as cfg


@pytest.fixture
def host_file(tmp_path, monkeypatch):
    path = tmp_path / "resolv.conf"
    monkeypatch.setattr(cfg, "HOST_RESOLV_CONF", str(path))
    return path


def test_resolv_conf_follows_the_host_file(host_file):
    host_file.write_text("# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n")
    assert cfg.resolv_conf(HostConfig()) == "# generated\nnameserver 10.0.0.2\nsearch example.org\n"
    assert cfg.resolv_conf(HostConfig()) == "# generated\nnameserver 10.0.0.2\nsearch example.org\n"
    host_file.write_text("nameserver 10.9.9.9\noptions ndots:2\n")
    st = os.stat(host_file)
    os.utime(host_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime, surely
    assert cfg.resolv_conf(HostConfig()) == "nameserver 10.9.9.9\noptions ndots:2\n"
    assert cfg.resolv_conf(HostConfig(), dns=("10.1.1.1",)) == "nameserver 10.1.1.1\noptions ndots:2\n"
    host_file.unlink()
    assert cfg.resolv_conf(HostConfig()) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_only_loopback_resolvers_give_dockers_defaults_but_the_host_network_keeps_them(host_file):
    host_file.write_text("nameserver 127.0.0.53\noptions edns0\n")
    assert cfg.resolv_conf(HostConfig()) == "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert cfg.resolv_conf(HostConfig(network_mode="host")) == "nameserver 127.0.0.53\noptions edns0\n"


def test_dns_options_build_search_nameserver_options(host_file):
    host_file.write_text("nameserver 10.0.0.2\nsearch example.org\noptions ndots:2\n")
    built = cfg.resolv_conf(HostConfig(dns=("1.1.1.1",), dns_search=("x.com",), dns_options=("ndots:3",)))
    assert built == "search x.com\nnameserver 1.1.1.1\noptions ndots:3\n"
    assert cfg.resolv_conf(HostConfig(dns=("1.1.1.1",))) == \
        "search example.org\nnameserver 1.1.1.1\noptions ndots:2\n"
    assert cfg.resolv_conf(HostConfig(dns_search=(".",))) == "nameserver 10.0.0.2\noptions ndots:2\n"
