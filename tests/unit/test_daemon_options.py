"""pyengined's options from flags and the configuration file (engine.config.options), and the
container defaults they set (engine.containers.config)."""

from __future__ import annotations

import ipaddress
import json

import pytest
import trio

from engine.config import options
from engine.config.options import AddressPool, DefaultUlimit
from engine.containers import config as cfg
from engine.containers.spec import HostConfig, LogConfig, Ulimit
from engine.daemon import parse_args
from engine.images import RegistryPolicy
from engine.networks import addressing


@pytest.fixture
def conf_file(tmp_path, monkeypatch):
    """Writes a daemon.json; the default path points into tmp_path (never the host's)."""
    monkeypatch.setattr(options, "DEFAULT_CONFIG_FILE", str(tmp_path / "absent.json"))
    monkeypatch.delenv("PYENGINE_CONFIG_FILE", raising=False)

    def write(doc) -> str:
        path = tmp_path / "daemon.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return str(path)

    return write


def refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("pyengined: ") and err.count("\n") == 1
    return err


def test_file_and_flags_fill_the_config(conf_file, tmp_path):
    path = conf_file({
        "log-opts": {"max-size": "10m"}, "dns": ["10.0.0.53"], "dns-search": ["corp"], "dns-opts": ["ndots:2"],
        "default-address-pools": [{"base": "10.50.0.0/16", "size": 26}], "labels": ["team=infra", "team=infra"],
        "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 4096}}, "default-shm-size": "128M",
        "insecure-registries": ["10.9.0.0/16", "reg.corp:5000"], "live-restore": False, "debug": True,
        "registry-mirrors": ["https://mirror.corp", "http://10.0.0.5:5000/", "https://mirror.corp/"],
        "log-level": "warn", "storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
        "experimental": False, "max-concurrent-downloads": 5, "max-concurrent-uploads": 2,
        "default-cgroupns-mode": "host", "mtu": 1400,
    })
    config = parse_args(["--config-file", path, "--data-root", str(tmp_path / "root"), "--log-driver", "json-file",
                         "--bip", "10.77.0.1/24"])
    assert config.data_root == str(tmp_path / "root")
    assert config.log_driver == "json-file" and config.log_opts == {"max-size": "10m"}
    assert (config.dns, config.dns_search, config.dns_options) == (["10.0.0.53"], ["corp"], ["ndots:2"])
    assert config.default_address_pools == [AddressPool("10.50.0.0/16", 26)]
    assert config.labels == ["team=infra"]
    assert config.default_ulimits == [DefaultUlimit("nofile", 1024, 4096)]
    assert config.default_shm_size == 128 << 20
    assert config.insecure_registries == ["10.9.0.0/16", "reg.corp:5000"]
    assert config.live_restore is False and config.debug is True and config.bip == "10.77.0.1/24"
    assert config.registry_mirrors == ["https://mirror.corp/", "http://10.0.0.5:5000/"]
    assert (config.log_level, config.max_concurrent_downloads, config.max_concurrent_uploads) == ("warn", 5, 2)
    assert (config.default_cgroupns_mode, config.mtu) == ("host", 1400)


def test_repeated_flags_take_the_files_shape(conf_file, tmp_path):
    config = parse_args(["--data-root", str(tmp_path), "--log-opt", "max-size=1m", "--log-opt", "max-file=3",
                         "--default-address-pool", "base=10.60.0.0/16,size=24", "--default-ulimit", "nproc=100",
                         "--default-ulimit", "nofile=10:20", "--dns", "10.1.1.1", "--dns", "10.1.1.2", "-D",
                         "--no-live-restore", "--label", "a=b"])
    assert config.log_opts == {"max-size": "1m", "max-file": "3"}
    assert config.default_address_pools == [AddressPool("10.60.0.0/16", 24)]
    assert config.default_ulimits == [DefaultUlimit("nproc", 100, 100), DefaultUlimit("nofile", 10, 20)]
    assert config.dns == ["10.1.1.1", "10.1.1.2"] and config.debug and not config.live_restore
    assert config.labels == ["a=b"]
    # nothing given: the defaults, and no file needed at the default path
    plain = parse_args(["--data-root", str(tmp_path)])
    assert (plain.log_driver, plain.log_opts, plain.dns, plain.default_shm_size) == ("json-file", {}, [], 64 << 20)
    assert plain.live_restore is True and plain.default_address_pools == []


@pytest.mark.parametrize("doc, flags, message", [
    ({"bogus": 1, "debug": True}, [], "the following directives don't match any configuration option: bogus"),
    ({"no-live-restore": True}, [], "don't match any configuration option: no-live-restore"),
    ({"debug": False}, ["-D"], "specified both as a flag and in the configuration file: debug: "
                               "(from flag: true, from file: false)"),
    ({"live-restore": True}, ["--no-live-restore"], "specified both as a flag and in the configuration file"),
    ({"dns": ["10.0.0.1"]}, ["--dns", "10.0.0.2"], 'dns: (from flag: ["10.0.0.2"], from file: ["10.0.0.1"])'),
    ("[1, 2]", [], "not a JSON object"),
    ("{nope", [], "unable to configure the daemon with file"),
    ({"log-driver": "syslog"}, [], "log driver 'syslog' is not supported"),
    ({"log-driver": "fancy"}, [], 'plugin "fancy" not found'),
    ({"log-opts": {"max-size": "-1"}}, [], "failed to initialize logging driver"),
    ({"log-opts": {"bogus": "1"}}, [], "unknown log opt 'bogus' for json-file log driver"),
    ({"dns": ["not-an-ip"]}, [], 'invalid value for "dns"'),
    ({"dns": "10.0.0.1"}, [], "expected a list of strings"),
    ({"default-shm-size": "lots"}, [], "invalid size: 'lots'"),
    ({"default-shm-size": "0"}, [], "must be greater than 0"),
    ({"default-address-pools": [{"base": "10.0.0.0/16", "size": 8}]}, [], "invalid pools size: 8"),
    ({"default-address-pools": [{"base": "nonsense"}]}, [], "invalid base pool 'nonsense'"),
    ({"default-ulimits": {"nofiles": {"Soft": 1, "Hard": 2}}}, [], "invalid ulimit type: nofiles"),
    ({"default-ulimits": {"nofile": {"Soft": 3, "Hard": 2}}}, [], "soft limit must be less than or equal"),
    ({"labels": ["a=1", "a=2"]}, [], "conflict labels for a=1 and a=2"),
    ({"labels": ["novalue"]}, [], "bad attribute format: novalue"),
    ({"debug": "yes"}, [], "expected true or false"),
    ({"log-level": "loud"}, [], "unable to parse logging level: loud"),
    ({"storage-driver": "vfs"}, [], "vfs: pyengine stores layers with overlay2 only"),
    ({"exec-opts": ["native.cgroupdriver=systemd"]}, [], "manages cgroups through cgroupfs only"),
    ({"exec-opts": ["native.umask=normal"]}, [], "unknown exec-opt 'native.umask=normal'"),
    ({"experimental": True}, [], "no experimental features"),
    ({"max-concurrent-downloads": 0}, [], "expected a positive number, got 0"),
    ({"default-cgroupns-mode": "shared"}, [], 'must be "host" or "private", not "shared"'),
    ({"mtu": 9999999}, [], "invalid MTU 9999999"),
    ({}, ["--mtu", "abc"], "expected a positive number"),
    ({"default-ipc-mode": "host"}, [], 'invalid default IPC mode "host"'),
    ({"ip": "localhost"}, [], "localhost is not an ip address"),
    ({"group": "no-such-group-here"}, [], "group no-such-group-here not found"),
    ({}, ["--icc", "maybe"], "invalid argument for --icc: invalid boolean 'maybe'"),
    ({"icc": "false"}, [], "expected true or false"),
    ({"proxies": {"ftp-proxy": "x"}}, [], "unknown proxy setting 'ftp-proxy'"),
    ({"proxies": {"https-proxy": "proxy.corp"}}, [], "invalid https-proxy 'proxy.corp'"),
    ({"proxies": {"no-proxy": "x"}}, ["--https-proxy", "http://p:1"], "specified both as a flag and in the"),
    ({"insecure-registries": ["ftp://reg.corp"]}, [], "insecure registry ftp://reg.corp should not contain '://'"),
    ({"insecure-registries": ["10.0.0.0/33"]}, [], 'insecure registry 10.0.0.0/33 is not valid: invalid host'),
    ({"insecure-registries": ["reg.corp:70000"]}, [], 'reg.corp:70000 is not valid: invalid port "70000"'),
    ({"insecure-registries": ["reg_corp"]}, [], 'insecure registry reg_corp is not valid: invalid host "reg_corp"'),
    ({}, ["--insecure-registry", "reg.corp-"], "invalid index name (reg.corp-). Cannot begin or end with a hyphen"),
    ({"registry-mirrors": ["ftp://m.corp"]}, [], 'invalid mirror: unsupported scheme "ftp"'),
    ({"registry-mirrors": ["https://m.corp/v2/"]}, [], "invalid mirror: path, query, or fragment"),
    ({"registry-mirrors": ["https://u:p@m.corp"]}, [], "username/password not allowed"),
    ({"registry-mirrors": ["m.corp"]}, [], 'unsupported scheme ""'),
    ({"bridge": "none"}, [], "without a default bridge network (none) is not supported"),
    ({}, ["--bridge", "a-name-far-too-long"], "invalid interface name"),
    ({}, ["--log-opt", "nokv"], "invalid argument for --log-opt: invalid key=value: 'nokv'"),
    ({}, ["--live-restore", "--no-live-restore"], "conflicting options: --live-restore and --no-live-restore"),
    ({}, ["--default-ulimit", "nofile=a"], "invalid argument for --default-ulimit"),
    ({}, ["--default-address-pool", "base=10.1.0.0/16,size=x"], "invalid argument for --default-address-pool"),
    ({"hosts": ["ftp://x"]}, [], "invalid host 'ftp://x'"),
])
def test_bad_options_are_refused_in_one_line(conf_file, capsys, doc, flags, message):
    path = conf_file(doc)
    assert message in refused(["--config-file", path, *flags], capsys)


def test_third_batch_of_dockerd_options(conf_file, tmp_path):
    path = conf_file({"init": True, "no-new-privileges": True, "default-ipc-mode": "shareable", "ip": "127.0.0.1",
                      "pidfile": str(tmp_path / "p.pid"), "group": "root"})
    config = parse_args(["--config-file", path, "--icc=false"])
    assert (config.init, config.no_new_privileges, config.default_ipc_mode) == (True, True, "shareable")
    assert (config.icc, config.ip, config.pidfile, config.group) == (False, "127.0.0.1", str(tmp_path / "p.pid"), 0)
    plain = parse_args(["--data-root", str(tmp_path)])
    assert (plain.icc, plain.ip, plain.init, plain.group, plain.default_ipc_mode) == (True, "0.0.0.0", False, None,
                                                                                        "private")


def test_proxy_flags_fill_the_files_object(conf_file, tmp_path):
    config = parse_args(["--data-root", str(tmp_path), "--http-proxy", "http://p:3128", "--no-proxy", "a,.b"])
    assert config.proxies == {"http-proxy": "http://p:3128", "no-proxy": "a,.b"}


def test_no_new_privileges_the_last_opt_else_the_daemons():
    assert cfg.no_new_privileges([], True) and not cfg.no_new_privileges([], False)
    assert cfg.no_new_privileges(["no-new-privileges"], False)
    assert cfg.no_new_privileges(["no-new-privileges:true"], False)
    assert not cfg.no_new_privileges(["no-new-privileges=false"], True)
    assert cfg.no_new_privileges(["no-new-privileges=false", "no-new-privileges=true"], False)
    assert cfg.no_new_privileges(["seccomp=unconfined"], True)


def test_a_named_config_file_must_exist(conf_file, capsys, tmp_path, monkeypatch):
    missing = str(tmp_path / "missing.json")
    assert f"open {missing}: no such file or directory" in refused(["--config-file", missing], capsys)
    monkeypatch.setenv("PYENGINE_CONFIG_FILE", missing)
    assert "no such file or directory" in refused([], capsys)


def test_daemon_log_defaults_fill_what_the_container_leaves_out():
    daemon = parse_args_like(log_driver="json-file", log_opts={"max-size": "10m", "max-file": "3"},
                             default_shm_size=1 << 20)
    host = cfg.with_daemon_defaults(HostConfig(log_config=LogConfig("", {}), shm_size=0), daemon)
    assert host.log_config == LogConfig("json-file", {"max-size": "10m", "max-file": "3"})
    assert host.shm_size == 1 << 20
    # the container's own options win; another driver takes none of the daemon's options
    own = cfg.with_daemon_defaults(HostConfig(log_config=LogConfig("json-file", {"max-size": "1m"})), daemon)
    assert own.log_config.options == {"max-size": "1m", "max-file": "3"}
    assert own.shm_size == 64 << 20  # a container's own size stays
    none = cfg.with_daemon_defaults(HostConfig(log_config=LogConfig("none", {})), daemon)
    assert none.log_config == LogConfig("none", {})
    # a daemon whose driver is none: a container without one gets none, with no options
    quiet = cfg.with_daemon_defaults(HostConfig(log_config=LogConfig("", {})), parse_args_like(log_driver="none"))
    assert quiet.log_config == LogConfig("none", {})
    # the cgroup namespace: the container's, else the daemon's
    host_ns = parse_args_like(default_cgroupns_mode="host", default_ipc_mode="shareable")
    assert cfg.with_daemon_defaults(HostConfig(cgroupns_mode=""), host_ns).cgroupns_mode == "host"
    assert cfg.with_daemon_defaults(HostConfig(ipc_mode=""), host_ns).ipc_mode == "shareable"
    assert cfg.with_daemon_defaults(HostConfig(ipc_mode="host"), host_ns).ipc_mode == "host"
    assert cfg.with_daemon_defaults(HostConfig(cgroupns_mode="private"), host_ns).cgroupns_mode == "private"


def test_default_ulimits_sit_under_the_containers_own():
    defaults = [DefaultUlimit("nofile", 100, 200), DefaultUlimit("nproc", 50, 60)]
    limits = {n: (s, h) for n, s, h in cfg.rlimits(HostConfig(ulimits=(Ulimit("nproc", 5, 6),)), defaults)}
    import resource

    assert limits[resource.RLIMIT_NOFILE] == (100, 200)
    assert limits[resource.RLIMIT_NPROC] == (5, 6)


def test_resolv_conf_takes_the_daemons_dns_under_the_containers(monkeypatch):
    monkeypatch.setattr(cfg, "_host_resolv_conf", lambda: ["search host.example", "nameserver 192.0.2.1",
                                                           "options ndots:5"])
    daemon = parse_args_like(dns=["10.0.0.53"], dns_search=["corp"], dns_options=[])
    assert cfg.resolv_conf(HostConfig(), daemon=daemon) == "search corp\nnameserver 10.0.0.53\noptions ndots:5\n"
    own = HostConfig(dns=("10.1.1.1",))
    assert cfg.resolv_conf(own, daemon=daemon) == "search corp\nnameserver 10.1.1.1\noptions ndots:5\n"
    # the embedded DNS of a user network stays the nameserver
    assert "nameserver 10.99.0.1\n" in cfg.resolv_conf(HostConfig(), dns=("10.99.0.1",), daemon=daemon)
    # no daemon DNS: the host's file without loopback resolvers, as before
    assert cfg.resolv_conf(HostConfig(), daemon=parse_args_like()) == (
        "search host.example\nnameserver 192.0.2.1\noptions ndots:5\n")


def test_networks_take_subnets_from_the_default_pools_in_order(monkeypatch):
    monkeypatch.setattr(addressing, "routed_except", lambda ours: [ipaddress.ip_network("10.50.0.0/26")])
    pools = [AddressPool("10.50.0.0/25", 26), AddressPool("10.60.0.0/16", 24)]

    class Net:
        def __init__(self, subnet):
            self.subnet, self.bridge = subnet, None

    async def pick(networks):
        return await addressing.pick_subnet(networks, tag="t", data_root="/x", default_bridge="b", pools=pools)

    assert trio.run(pick, []) == "10.50.0.64/26"  # the first is routed on the host
    assert trio.run(pick, [Net("10.50.0.64/26")]) == "10.60.0.0/24"
    full = [Net("10.50.0.64/26"), *(Net(f"10.60.{i}.0/24") for i in range(256))]
    with pytest.raises(Exception, match="non-overlapping IPv4 address pool among the defaults"):
        trio.run(pick, full)


def test_insecure_registries_as_dockerd_loads_them(conf_file):
    path = conf_file({"insecure-registries": ["http://reg.corp:5000", "https://plain.corp", "10.9.3.0/16",
                                              "10.9.0.0/16", "[::1]:5000", "10.1.2.3"]})
    config = parse_args(["--config-file", path])
    # the scheme dropped (dockerd warns), a CIDR as its network, each once
    assert config.insecure_registries == ["reg.corp:5000", "plain.corp", "10.9.0.0/16", "[::1]:5000", "10.1.2.3"]


def test_registry_policy_names_and_cidrs():
    policy = RegistryPolicy(("10.9.0.0/16", "reg.corp:5000", "plain.corp"))
    assert policy.is_insecure("10.9.3.4:5000") and policy.is_insecure("10.9.3.4")
    assert policy.is_insecure("reg.corp:5000") and not policy.is_insecure("reg.corp:6000")
    assert policy.is_insecure("plain.corp:443") and policy.is_insecure("127.0.0.1:5000")
    assert not policy.is_insecure("10.10.0.1:5000") and not policy.is_insecure("docker.io")
    assert not RegistryPolicy().is_insecure("reg.corp:5000")


def parse_args_like(**fields):
    from engine.config import Config

    return Config(**fields)


def test_reload_reads_the_file_again_with_the_same_flags(conf_file, tmp_path):
    path = conf_file({"labels": ["a=1"], "dns": ["10.0.0.1"]})
    running = parse_args(["--config-file", path, "-D", "--data-root", str(tmp_path)])
    assert running.sources == options.Sources(path, True, running.sources.flags)
    conf_file({"labels": ["a=2"], "dns": ["10.0.0.2"], "max-concurrent-uploads": 7, "log-level": "error"})
    changed, waiting = options.reload(running.sources, running)
    assert changed == {"labels": ["a=2"], "max_concurrent_uploads": 7, "log_level": "error"}
    assert waiting == ["dns"]  # debug stays the flag's
    conf_file({})  # a key no longer named keeps its value, as dockerd
    assert options.reload(running.sources, running) == ({}, [])
    conf_file({"debug": False})
    with pytest.raises(options.ConfigError, match="specified both as a flag and in the configuration file"):
        options.reload(running.sources, running)


def test_one_ulimit_format_for_the_cli_and_the_daemon():
    from engine import units

    assert units.parse_ulimit("nofile=1024:2048") == ("nofile", 1024, 2048)
    assert units.parse_ulimit("nproc=50") == ("nproc", 50, 50)
    for bad in ("nofile=a", "nofile=1:b", "nofile"):
        with pytest.raises(ValueError):
            units.parse_ulimit(bad)
