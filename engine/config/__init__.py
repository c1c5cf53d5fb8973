"""Daemon configuration: data root, listeners, defaults. Set by flags and the configuration
file (engine.config.options), and env, so tests run a private daemon on a temp root and socket
beside any other daemon."""

import os
from dataclasses import dataclass, field

DEFAULT_DATA_ROOT = "/var/lib/pyengine"
DEFAULT_EXEC_ROOT = "/run/pyengine"
DEFAULT_SOCKET = f"{DEFAULT_EXEC_ROOT}/pyengine.sock"
DEFAULT_HOST = f"unix://{DEFAULT_SOCKET}"


def default_host() -> str:
    """The address clients use: PYENGINE_HOST, else the default unix socket."""
    return os.environ.get("PYENGINE_HOST") or DEFAULT_HOST


@dataclass
class Config:
    data_root: str = DEFAULT_DATA_ROOT
    # Host-wide runtime state shared by the daemons of this host (emptied at boot, as /run).
    exec_root: str = DEFAULT_EXEC_ROOT
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    # Name of our cgroup parent (v1: /sys/fs/cgroup/<ctrl>/<parent>/<id>; v2 likewise).
    cgroup_parent: str = "pyengine"
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    debug: bool = False
    # Default bridge network: device name and gateway/prefix ("10.1.2.1/24"). None = derived
    # per daemon (pe0 for the default data root), a subnet the host does not route.
    bridge_name: str | None = None
    bip: str | None = None
    # Where Docker network/volume plugins' sockets are looked for (None = Docker's dirs).
    plugin_dirs: list[str] | None = None
    # Live restore: containers outlive the daemon (kept by the spawner process). False: a
    # graceful stop stops them. spawner=False: clone from the daemon (no live restore).
    live_restore: bool = True
    spawner: bool = True
    # Per run, the most container output the spawner keeps in its spill file while no daemon
    # has logged it; beyond it the container blocks on its full pipe until a daemon reads.
    spill_max: int = 64 << 20
    # Container defaults (dockerd's daemon options of these names; engine.config.options).
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    default_ulimits: list = field(default_factory=list)  # [options.DefaultUlimit]
    default_shm_size: int = 64 << 20
    # Networks created without a subnet take theirs from these ([options.AddressPool]; none:
    # a free /24 of 10.100-199.x.0).
    default_address_pools: list = field(default_factory=list)
    # Registries spoken to over plain http besides loopback ones: host[:port] or CIDR.
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)  # for Docker Hub's images, in order
    # The daemon's own proxy (registries): {"http-proxy", "https-proxy", "no-proxy"} → value,
    # set as its HTTP(S)_PROXY/NO_PROXY environment at start, as dockerd's
    proxies: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)  # the daemon's, key=value (docker info)
    log_level: str = "info"  # engine.config.options.LOG_LEVELS; debug also by `debug`
    experimental: bool = False  # dockerd's key, accepted as false (no experimental features)
    max_concurrent_downloads: int = 3  # layers at once per pull
    max_concurrent_uploads: int = 3  # layers at once per push
    default_cgroupns_mode: str = "private"  # a container's, when it names none
    mtu: int = 1500  # the default bridge network's
    icc: bool = True  # containers on the default bridge reach each other
    ip: str = "0.0.0.0"  # host address of the default bridge's ports published without one
    init: bool = False  # containers' --init when they give none
    no_new_privileges: bool = False  # containers' no-new-privileges when they give none
    default_ipc_mode: str = "private"  # or "shareable"
    # A stop without live restore stops running containers as `docker stop` does, all at once,
    # within this many seconds (or the longest --stop-timeout among them, if longer).
    shutdown_timeout: int = 15
    # containers' seccomp profile when they name none: "" or "builtin" (Docker's default),
    # "unconfined", or a JSON profile's path (read once, at start)
    seccomp_profile: str = ""
    pidfile: str | None = None  # the daemon's pid is written there while it runs
    group: int | None = None  # gid of the unix API sockets (None: root's)
    # Accepted as dockerd's, with the only values this engine has (so a dockerd config file
    # carries over): overlay2, native.cgroupdriver=cgroupfs
    storage_driver: str = "overlay2"
    exec_opts: list[str] = field(default_factory=list)
    # Where these came from (engine.config.options.Sources), read again at SIGHUP; None: built
    # in code, nothing to reload
    sources: object = None

    @property
    def containers_dir(self) -> str:
        return os.path.join(self.data_root, "containers")

    @property
    def images_dir(self) -> str:
        return os.path.join(self.data_root, "image")

    @property
    def db_path(self) -> str:
        return os.path.join(self.data_root, "engine.db")
