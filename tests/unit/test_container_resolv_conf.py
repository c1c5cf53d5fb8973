"""A container's resolv.conf follows the host's, also when the host's changes between two
creates (it is read again only when it changed)."""

import os

from engine.containers import HostConfig
from engine.containers import config as cfg


def test_resolv_conf_follows_the_host_file(tmp_path, monkeypatch):
    host_file = tmp_path / "resolv.conf"
    host_file.write_text("nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n")
    monkeypatch.setattr(cfg, "HOST_RESOLV_CONF", str(host_file))
    assert cfg.resolv_conf(HostConfig()) == "nameserver 10.0.0.2\nsearch example.org\n"
    assert cfg.resolv_conf(HostConfig()) == "nameserver 10.0.0.2\nsearch example.org\n"
    host_file.write_text("nameserver 10.9.9.9\noptions ndots:2\n")
    st = os.stat(host_file)
    os.utime(host_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime, surely
    assert cfg.resolv_conf(HostConfig()) == "nameserver 10.9.9.9\noptions ndots:2\n"
    assert cfg.resolv_conf(HostConfig(), dns=("10.1.1.1",)) == "nameserver 10.1.1.1\noptions ndots:2\n"
    host_file.unlink()
    assert cfg.resolv_conf(HostConfig()) == "\n"
