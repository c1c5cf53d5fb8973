"""A container's specification, typed: what it runs (ContainerConfig) and how the host runs it
(HostConfig). engine.api builds both from Docker's create JSON once, at create, and turns them
back into Docker's JSON for inspect; everything below the API (launch, runspec, exec, health,
update, restore, networks, volumes) reads these attributes, never Docker's dicts. The record
on disk keeps them as data (engine.containers.record).

Docker's "not set" matters where inspect shows it (null vs [] vs 0), so such fields are
`X | None`; zero numbers mean "unset" where Docker's do.
"""

from __future__ import annotations

import posixpath
from typing import Any

import attrs

from engine import errors

#: Healthcheck durations are nanoseconds, as in Docker's JSON.
SECOND = 1_000_000_000
DEFAULT_INTERVAL_NS = 30 * SECOND
DEFAULT_TIMEOUT_NS = 30 * SECOND
DEFAULT_START_PERIOD_NS = 0
DEFAULT_RETRIES = 3
MINIMUM_DURATION_NS = 1_000_000  # 1ms, dockerd's containertypes.MinimumDuration
DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_SHM_SIZE = 64 * 1024 * 1024


@attrs.frozen
class HealthConfig:
    """A container's healthcheck. Zero durations/retries mean "the default"."""

    test: tuple[str, ...] = ()
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    retries: int = 0

    @property
    def enabled(self) -> bool:
        """Only CMD and CMD-SHELL probe; NONE (or nothing, or an unknown kind) disables."""
        return bool(self.test) and self.test[0] in ("CMD", "CMD-SHELL")

    @property
    def interval(self) -> float:
        return (self.interval_ns or DEFAULT_INTERVAL_NS) / SECOND

    @property
    def timeout_ns_effective(self) -> int:
        return self.timeout_ns or DEFAULT_TIMEOUT_NS

    @property
    def start_period(self) -> float:
        return (self.start_period_ns or DEFAULT_START_PERIOD_NS) / SECOND

    @property
    def retries_effective(self) -> int:
        return self.retries if self.retries > 0 else DEFAULT_RETRIES

    def command(self, shell: tuple[str, ...] | None = None) -> list[str]:
        """The probe's argv: CMD runs as given, CMD-SHELL through the container's shell."""
        args = list(self.test[1:])
        if self.test[0] == "CMD-SHELL":
            args = list(shell or DEFAULT_SHELL) + args
        return args

    def over(self, image: "HealthConfig | None") -> "HealthConfig":
        """dockerd's merge of a request's healthcheck over the image's: each empty field
        (test, durations, retries) inherits the image's."""
        if image is None:
            return self
        return HealthConfig(
            test=self.test or image.test, interval_ns=self.interval_ns or image.interval_ns,
            timeout_ns=self.timeout_ns or image.timeout_ns,
            start_period_ns=self.start_period_ns or image.start_period_ns, retries=self.retries or image.retries)

    def validate(self) -> None:
        """dockerd's validateHealthCheck, with its messages."""
        for name, value in (("Interval", self.interval_ns), ("Timeout", self.timeout_ns),
                            ("StartPeriod", self.start_period_ns)):
            if value != 0 and value < MINIMUM_DURATION_NS:
                raise errors.InvalidParameter(f"{name} in Healthcheck cannot be less than 1ms")
        if self.retries < 0:
            raise errors.InvalidParameter("Retries in Healthcheck cannot be negative")


@attrs.frozen
class ContainerConfig:
    """What the container runs. Built by engine.api from a request (unset fields: None or
    empty), then completed with the image's defaults at create (config.with_image_defaults)."""

    image: str = ""  # as the client named it
    hostname: str = ""
    domainname: str = ""
    user: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: tuple[str, ...] | None = None  # "80/tcp"
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] | None = None  # anonymous volume destinations
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None  # a request's (""): no entrypoint, no image Cmd
    labels: dict[str, str] = attrs.Factory(dict)
    mac_address: str = ""  # applied to the primary network's endpoint
    healthcheck: HealthConfig | None = None
    shell: tuple[str, ...] | None = None
    stop_signal: str = ""
    stop_timeout: int | None = None

    @property
    def command(self) -> tuple[str, ...]:
        return (self.entrypoint or ()) + (self.cmd or ())


@attrs.frozen
class RestartPolicy:
    """An empty name is what clients before Docker 25 sent for "no"."""

    name: str = "no"
    maximum_retry_count: int = 0

    def validate(self) -> None:
        """dockerd 20.10's rules, with its messages (checked side by side)."""
        if self.name in ("no", "always", "unless-stopped"):
            if self.maximum_retry_count:
                raise errors.InvalidParameter(
                    f"maximum retry count cannot be used with restart policy '{self.name}'")
        elif self.name == "on-failure":
            if self.maximum_retry_count < 0:
                raise errors.InvalidParameter("maximum retry count cannot be negative")
        elif self.name:
            raise errors.InvalidParameter(f"invalid restart policy '{self.name}'")

    def normalized(self) -> "RestartPolicy":
        return self if self.name else RestartPolicy("no", self.maximum_retry_count)


@attrs.frozen
class LogConfig:
    type: str = "json-file"
    options: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class Bind:
    """One `-v src:dst[:opts]`. A source that is not an absolute path names a volume."""

    text: str  # as given: inspect shows it so
    source: str
    destination: str
    mode: str = ""  # the options part ("ro,rshared"), "" when none
    default_propagation: str = ""  # when the mode names none ("": rprivate; rslave over the data root)

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.mode.split(",")) if self.mode else ()

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def is_volume(self) -> bool:
        return not self.source.startswith("/")

    @property
    def named_propagation(self) -> str:
        """The propagation the mode names, "" when none."""
        from engine.containers.propagation import PROPAGATIONS

        return next((o for o in self.options if o in PROPAGATIONS), "")

    @property
    def propagation(self) -> str:
        return self.named_propagation or self.default_propagation or "rprivate"

    @classmethod
    def parse(cls, text: str) -> "Bind":
        """"/host:/ctr[:ro|rw,…]" or "volume:/ctr[:…]", with dockerd's messages."""
        parts = text.split(":")
        if len(parts) < 2 or len(parts) > 3 or not parts[1]:
            raise errors.InvalidParameter(f"invalid volume specification: '{text}'")
        source, destination = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else ""
        if not destination.startswith("/"):
            raise errors.InvalidParameter(
                f"invalid volume specification: '{text}': invalid mount config for type \"bind\": "
                f"invalid mount path: '{destination}' mount path must be absolute"
            )
        if posixpath.normpath(destination) == "/":
            raise errors.InvalidParameter(
                f"invalid volume specification: '{text}': invalid mount config for type \"bind\": "
                "invalid specification: destination can't be '/'")
        if not source.startswith("/"):
            from engine.volumes.model import NAME_RE

            if not NAME_RE.match(source):
                raise errors.InvalidParameter(
                    f"invalid volume specification: '{text}': \"{source}\" includes invalid characters for a "
                    "local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to "
                    "pass a host directory, use absolute path"
                )
        for option in mode.split(",") if mode else ():
            if option not in ("ro", "rw", "z", "Z", "rprivate", "private", "rslave", "slave", "rshared", "shared", "nocopy"):
                raise errors.InvalidParameter(f"invalid mode: {option}")
        return cls(text, source, destination, mode)


@attrs.frozen
class InheritedBind:
    """A host-path mount of a --volumes-from container, as this container has it."""

    source: str
    destination: str
    read_only: bool
    propagation: str


@attrs.frozen
class VolumeDriverConfig:
    name: str = ""
    options: dict[str, str] | None = None


@attrs.frozen
class Mount:
    """One HostConfig.Mounts entry (`--mount`). The option groups are None when not given."""

    type: str = "bind"  # bind | volume | tmpfs
    source: str = ""
    target: str = ""
    read_only: bool | None = None  # None: not said (writable)
    consistency: str = ""
    bind_options: bool = False  # BindOptions given (even empty)
    propagation: str = ""  # as BindOptions give it ("": the default)
    default_propagation: str = ""  # "": rprivate; rslave over the data root
    non_recursive: bool = False
    volume_options: bool = False  # VolumeOptions given (even empty)
    no_copy: bool = False
    volume_labels: dict[str, str] | None = None
    volume_driver: VolumeDriverConfig | None = None
    tmpfs_options: bool = False  # TmpfsOptions given (even empty)
    tmpfs_size: int = 0
    tmpfs_mode: int = 0

    @property
    def effective_propagation(self) -> str:
        return self.propagation or self.default_propagation or "rprivate"


@attrs.frozen
class PortBinding:
    host_ip: str = ""
    host_port: str = ""  # "8080", "8000-8010" or "" (any)


@attrs.frozen
class DeviceMapping:
    path_on_host: str
    path_in_container: str = ""
    cgroup_permissions: str = "rwm"


@attrs.frozen
class Ulimit:
    name: str
    soft: int = 0
    hard: int = 0


@attrs.frozen
class DeviceLimit:
    """A per-device block I/O weight or throttle (`--blkio-weight-device`, `--device-read-bps`…)."""

    path: str
    value: int


@attrs.frozen
class ResourceLimits:
    """The cgroup limits a container asks for (`docker update` changes them). The blkio
    device lists are None when not given, [] when given empty or discarded (unsupported)."""

    memory: int = 0
    memory_swap: int = 0  # memory+swap; -1 unlimited; 2×memory by default
    memory_reservation: int = 0
    memory_swappiness: int | None = None
    oom_kill_disable: bool = False
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpu_realtime_period: int = 0  # µs (v1 cpu.rt_period_us)
    cpu_realtime_runtime: int = 0  # µs (v1 cpu.rt_runtime_us)
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    kernel_memory: int = 0  # deprecated: kept and shown, not applied (as dockerd on cgroup v2 / new kernels)
    pids_limit: int | None = None
    blkio_weight: int = 0
    blkio_weight_device: tuple[DeviceLimit, ...] | None = ()
    blkio_read_bps: tuple[DeviceLimit, ...] | None = None
    blkio_write_bps: tuple[DeviceLimit, ...] | None = None
    blkio_read_iops: tuple[DeviceLimit, ...] | None = None
    blkio_write_iops: tuple[DeviceLimit, ...] | None = None


#: ResourceLimits' per-device lists (the names cgroups.Resources/Support use too).
BLKIO_DEVICE_FIELDS = ("blkio_weight_device", "blkio_read_bps", "blkio_write_bps", "blkio_read_iops",
                       "blkio_write_iops")


@attrs.frozen
class HostConfig:
    """How the host runs the container: resources, mounts, namespaces, network, security."""

    resources: ResourceLimits = ResourceLimits()
    binds: tuple[Bind, ...] | None = None
    mounts: tuple[Mount, ...] | None = None
    volumes_from: tuple[str, ...] | None = None  # "container[:ro|rw]", as given
    storage_opt: dict[str, str] | None = None  # refused: no per-container quota on this storage
    #: The bind mounts the VolumesFrom containers had, copied at create as dockerd copies their
    #: mount points (their volumes are the volume manager's). Not Docker's HostConfig: inspect
    #: shows them under Mounts.
    inherited_binds: tuple[InheritedBind, ...] = ()
    tmpfs: dict[str, str] | None = None  # destination → options
    volume_driver: str = ""
    network_mode: str = "default"
    port_bindings: dict[str, tuple[PortBinding, ...] | None] = attrs.Factory(dict)  # "80/tcp" → …
    publish_all_ports: bool = False
    links: tuple[str, ...] | None = None  # "name:alias"
    dns: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] | None = None  # "name:address"
    restart_policy: RestartPolicy = RestartPolicy()
    auto_remove: bool = False
    log_config: LogConfig = LogConfig()
    privileged: bool = False
    cap_add: tuple[str, ...] | None = None
    cap_drop: tuple[str, ...] | None = None
    security_opt: tuple[str, ...] | None = None
    group_add: tuple[str, ...] | None = None
    readonly_rootfs: bool = False
    masked_paths: tuple[str, ...] | None = None
    readonly_paths: tuple[str, ...] | None = None
    init: bool | None = None
    oom_score_adj: int = 0
    shm_size: int = DEFAULT_SHM_SIZE  # 0: the default
    ulimits: tuple[Ulimit, ...] | None = None
    sysctls: dict[str, str] | None = None
    devices: tuple[DeviceMapping, ...] = ()
    device_cgroup_rules: tuple[str, ...] | None = None
    cgroup_parent: str = ""
    cgroupns_mode: str = "private"
    pid_mode: str = ""
    ipc_mode: str = "private"
    uts_mode: str = ""
    #: The rest of Docker's HostConfig as the client sent it: fields this engine accepts but
    #: does not act on (ContainerIDFile, ConsoleSize, Isolation, Runtime, …). Nothing below
    #: engine.api reads it; inspect shows it back.
    other: dict[str, Any] = attrs.Factory(dict)

    @property
    def shares_host_network(self) -> bool:
        return self.network_mode == "host"

    @property
    def shm_bytes(self) -> int:
        return self.shm_size or DEFAULT_SHM_SIZE


@attrs.frozen
class ExecConfig:
    """A `docker exec` process (engine.api builds it from the exec-create JSON)."""

    cmd: tuple[str, ...]
    tty: bool = False
    privileged: bool = False
    user: str = ""  # "": the container's
    working_dir: str = ""  # "": the container's
    env: tuple[str, ...] = ()
    attach_stdin: bool = False
    # None: not said; the output is then sent to an attached client all the same
    attach_stdout: bool | None = None
    attach_stderr: bool | None = None
    detach_keys: str = ""
