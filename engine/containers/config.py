"""A create's spec completed and checked (once, at create: the image's defaults, dockerd's
rules and messages), and the helpers that turn the spec into what a process gets (env, user,
rlimits, /etc files). The runtime never sees API JSON."""

from __future__ import annotations

import functools
import locale
import os
import re
import resource
import signal
from typing import TYPE_CHECKING

import attrs

from engine import errors
from engine.containers import blkio, cgroupparent, devices, sysctls
from engine.containers.logs import check_option_names as check_log_option_names
from engine.containers.logs import validate_options as validate_log_options
from engine.containers.propagation import PROPAGATIONS
from engine.runtime import MASKED_PATHS, READONLY_PATHS, cgroups, resolve_capabilities
from engine.containers.spec import (
    BLKIO_DEVICE_FIELDS, ContainerConfig, HealthConfig, HostConfig, LogConfig, Ulimit)

if TYPE_CHECKING:
    from engine.images import RunConfig

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MIN_MEMORY = 6 * 1024 * 1024
#: HostConfig.Runtime values a create may name: none (the default), the name inspect shows
#: (runc, as dockerd's default) and the one `docker info` lists. dockerd refuses the rest.
KNOWN_RUNTIMES = ("", "runc", "pyengine")
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise errors.InvalidParameter(
            f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'
        )
    return name.lstrip("/")


def parse_signal(value: str | int | None, default: int = signal.SIGTERM) -> int:
    """Docker's signal spelling: "SIGTERM", "TERM", "15", 15."""
    if value in (None, ""):
        return default
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().upper()
        if text.isdigit():
            number = int(text)
        else:
            name = text if text.startswith("SIG") else "SIG" + text
            try:
                number = int(signal.Signals[name])
            except KeyError:
                raise errors.InvalidParameter(f"Invalid signal: {value}") from None
    if not 0 < number < 65:
        raise errors.InvalidParameter(f"Invalid signal: {value}")
    return number


def merge_env(image_env: list[str], request_env: list[str]) -> list[str]:
    """A create's Env as dockerd makes it: the request's entries as given, then the image's
    whose name the request does not set."""
    for entry in [*image_env, *request_env]:
        if not entry.split("=", 1)[0]:
            raise errors.InvalidParameter(f"invalid environment variable: {entry}")
    names = {entry.split("=", 1)[0] for entry in request_env}
    return [*request_env, *(e for e in image_env if e.split("=", 1)[0] not in names)]


def check_kernel_memory(value: int) -> str:
    """--kernel-memory (create, update): kept and shown, never applied; dockerd's warning."""
    if value < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum kernel memory limit allowed is 6MB")
    return "Specifying a kernel memory limit is deprecated and will be removed in a future release."


def replace_or_append(defaults: list[str], overrides) -> list[str]:
    """dockerd's ReplaceOrAppendEnvValues: each override takes the place of the entry of its
    name or is appended; then entries without "=" are dropped (`-e NAME` of a variable the
    client did not have: unset, not passed on as a malformed entry)."""
    env = list(defaults)
    position = {entry.split("=", 1)[0]: i for i, entry in enumerate(env)}
    for entry in overrides:
        name = entry.split("=", 1)[0]
        if name in position:
            env[position[name]] = entry
        else:
            position[name] = len(env)
            env.append(entry)
    return [entry for entry in env if "=" in entry]


def with_image_defaults(request: ContainerConfig, image: RunConfig) -> ContainerConfig:
    """A create request completed with its image's defaults (engine.images.RunConfig),
    Docker's way: entrypoint/cmd, env (the request's override by key), labels, user, workdir,
    ports, volumes, healthcheck, shell, stop signal. InvalidParameter names what is wrong."""
    cmd = request.cmd or ()
    entrypoint = request.entrypoint
    if entrypoint is None:
        entrypoint = image.entrypoint
        if not cmd:
            cmd = image.cmd
    elif entrypoint == ("",):
        entrypoint = ()  # an explicit "" drops the image's entrypoint and Cmd, as Docker does
    if not entrypoint and not cmd:
        raise errors.InvalidParameter("No command specified")
    labels = {**image.labels, **request.labels}
    stop_signal = request.stop_signal or image.stop_signal
    if stop_signal:
        parse_signal(stop_signal)
    h = image.healthcheck
    image_health = HealthConfig(test=h.test, interval_ns=h.interval_ns, timeout_ns=h.timeout_ns,
                                start_period_ns=h.start_period_ns, retries=h.retries) if h else None
    healthcheck = request.healthcheck.over(image_health) if request.healthcheck is not None else image_health
    if healthcheck is not None:
        healthcheck.validate()
    shell = request.shell or image.shell or None
    config = attrs.evolve(
        request,
        user=request.user or image.user,
        exposed_ports=request.exposed_ports or image.exposed_ports or None,
        env=tuple(merge_env(list(image.env), list(request.env))),
        cmd=tuple(cmd) or None,
        volumes=request.volumes or image.volumes or None,
        working_dir=request.working_dir or image.working_dir,
        entrypoint=tuple(entrypoint) or None,
        labels=labels, healthcheck=healthcheck, shell=shell, stop_signal=stop_signal,
    )
    if config.working_dir and not config.working_dir.startswith("/"):
        raise errors.InvalidParameter(
            f"the working directory '{config.working_dir}' is invalid, it needs to be an absolute path"
        )
    return config


_DOCKER_LOG_DRIVERS = {"local", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs",
                       "logentries"}  # dockerd's other built-in drivers


def validate_host_config(host: HostConfig) -> tuple[HostConfig, list[str]]:
    """dockerd's checks of a HostConfig (its messages), and its defaults filled in: swap as
    large as memory, what this host's cgroups cannot apply discarded with a warning.
    Returns (the host config to keep, warnings)."""
    warnings: list[str] = []
    res = host.resources
    memory, swap = res.memory, res.memory_swap
    if memory and memory < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory and not swap:
        swap = 2 * memory  # dockerd's default: swap as large as memory
    if swap > 0 and memory and swap < memory:
        raise errors.InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if swap and not memory and swap != -1:
        raise errors.InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    cgroups.check_memory_reservation(memory, res.memory_reservation)
    if res.kernel_memory:
        warnings.append(check_kernel_memory(res.kernel_memory))
    if host.storage_opt:  # dockerd's overlay2 takes a size only over xfs with project quotas
        raise errors.SystemError_("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
    if res.nano_cpus and (res.cpu_quota or res.cpu_period):
        raise errors.InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        )
    if res.nano_cpus < 0 or (res.nano_cpus and res.nano_cpus > os.cpu_count() * 1_000_000_000):
        raise errors.InvalidParameter(
            f"Range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only "
            f"{os.cpu_count()} CPUs available"
        )
    cgroups.check_cfs(res.cpu_period, res.cpu_quota)
    if res.cpu_shares < 0:
        raise errors.InvalidParameter("invalid CPU shares")
    cgroups.check_cpusets(res.cpuset_cpus, res.cpuset_mems, cgroups.support())
    policy = host.restart_policy
    policy.validate()
    policy = policy.normalized()
    if host.auto_remove and policy.name != "no":
        raise errors.InvalidParameter("can't create 'AutoRemove' container with restart policy")

    log_type = host.log_config.type or "json-file"
    validate_log_config(log_type, host.log_config.options)
    devices.validate(host)
    for mount in host.mounts or ():
        _validate_mount(mount)
    resolve_capabilities(host.cap_add or (), host.cap_drop or (), host.privileged)
    for ulimit in host.ulimits or ():
        validate_ulimit(ulimit)
    runtime = host.other.get("Runtime") or ""
    if runtime not in KNOWN_RUNTIMES:
        raise errors.InvalidParameter(f"Unknown runtime specified {runtime}")
    isolation = host.other.get("Isolation") or ""
    if isolation not in ("", "default"):
        raise errors.InvalidParameter(f'Invalid isolation: "{isolation}" - linux only supports \'default\'')
    for opt in host.security_opt or ():
        if opt.split("=", 1)[0].split(":", 1)[0] not in ("no-new-privileges", "seccomp", "apparmor", "label"):
            raise errors.InvalidParameter(f"invalid --security-opt: {opt!r}")

    mode = host.network_mode or "default"
    if mode == "container:":
        raise errors.InvalidParameter(f"invalid NetworkMode: {mode!r}")
    # Network names are checked by the network manager (engine.networks).
    for field, value, allowed, refusal in (
            ("PidMode", host.pid_mode, ("", "host"), "invalid PID mode"),
            ("IpcMode", host.ipc_mode, ("", "private", "shareable", "host", "none"), "Invalid IPC mode"),
            ("UTSMode", host.uts_mode, ("", "host"), "invalid UTS mode")):
        joins = field != "UTSMode" and value.startswith("container:") and value != "container:"
        if value not in allowed and not joins:
            raise errors.InvalidParameter(f"{refusal}: {value}")  # dockerd's words
    changes = {}  # evolve only what changed: a create pays each evolve of this wide class
    if policy != host.restart_policy:
        changes["restart_policy"] = policy
    if mode != host.network_mode:
        changes["network_mode"] = mode
    if log_type != host.log_config.type:
        changes["log_config"] = attrs.evolve(host.log_config, type=log_type)
    if swap != res.memory_swap:
        changes["resources"] = attrs.evolve(res, memory_swap=swap)
    if not host.privileged:  # dockerd shows the paths it masks in HostConfig ([]: none)
        if host.masked_paths is None:
            changes["masked_paths"] = MASKED_PATHS
        if host.readonly_paths is None:
            changes["readonly_paths"] = READONLY_PATHS
    if changes:
        host = attrs.evolve(host, **changes)
    return _validate_kernel_knobs(host, warnings), warnings


def _validate_mount(mount) -> None:
    """A --mount (HostConfig.Mounts entry), as dockerd's validateMountConfig checks it."""
    kind = mount.type or "bind"

    def refuse(reason: str) -> None:
        raise errors.InvalidParameter(f'invalid mount config for type "{kind}": {reason}')

    if mount.target in ("/", "") or os.path.normpath(mount.target) == "/":
        refuse("invalid specification: destination can't be '/'")
    if not mount.target.startswith("/"):
        refuse(f"invalid mount path: '{mount.target}' mount path must be absolute")
    if kind == "bind":
        if not mount.source:
            refuse("field Source must not be empty")
        if mount.volume_options:
            refuse("field VolumeOptions must not be specified")
        if not mount.source.startswith("/"):
            refuse(f"invalid mount path: '{mount.source}' mount path must be absolute")
        if not os.path.exists(mount.source):
            refuse(f"bind source path does not exist: {mount.source}")
        if mount.propagation and mount.propagation not in PROPAGATIONS:
            refuse(f"invalid propagation mode: {mount.propagation}")
    elif kind == "volume":
        if mount.bind_options:
            refuse("field BindOptions must not be specified")
        if not mount.source and mount.read_only:
            refuse("must not set ReadOnly mode when using anonymous volumes")
    elif kind == "tmpfs":
        if mount.bind_options:
            refuse("field BindOptions must not be specified")
        if mount.source:
            refuse("field Source must not be specified")
    else:
        refuse("mount type unknown")


def _validate_kernel_knobs(host: HostConfig, warnings: list[str]) -> HostConfig:
    """OomScoreAdj, CgroupnsMode, CgroupParent, Sysctls, MemorySwappiness, OomKillDisable and
    the per-device block I/O limits, with dockerd 20.10's messages and warnings; what this
    host's cgroups cannot apply is discarded, as dockerd does."""
    score = host.oom_score_adj
    if not -1000 <= score <= 1000:
        raise errors.InvalidParameter(f"Invalid value {score}, range for oom score adj is [-1000, 1000]")
    if host.shm_size < 0:
        raise errors.InvalidParameter("SHM size can not be less than 0")
    if not host.cgroupns_mode:
        host = attrs.evolve(host, cgroupns_mode="private")  # this daemon's default on v1 and v2
    elif host.cgroupns_mode not in ("host", "private"):
        raise errors.InvalidParameter(f"invalid cgroup namespace mode: {host.cgroupns_mode}")
    cgroupparent.validate(host.cgroup_parent)
    sysctls.validate(host)
    res = host.resources
    if res.cpu_realtime_period or res.cpu_realtime_runtime:
        if not cgroups.support().cpu_realtime:
            raise errors.InvalidParameter("Your kernel does not support CPU real-time scheduler")
        if res.cpu_realtime_period and res.cpu_realtime_runtime > res.cpu_realtime_period:
            raise errors.InvalidParameter("cpu real-time runtime cannot be higher than cpu real-time period")
    if (res.memory_swappiness in (None, -1) and not res.oom_kill_disable and not res.blkio_weight
            and not any(getattr(res, f) for f in BLKIO_DEVICE_FIELDS)):
        return host  # nothing that needs the host's cgroups looked at
    support = cgroups.support()
    if res.blkio_weight and not support.blkio_weight:  # before the range, as dockerd
        warnings.append(cgroups.BLKIO_WEIGHT_UNSUPPORTED_WARNING)
        res = attrs.evolve(res, blkio_weight=0)
    elif res.blkio_weight and not 10 <= res.blkio_weight <= 1000:
        raise errors.InvalidParameter("Range of blkio weight is from 10 to 1000")
    swappiness = res.memory_swappiness
    if swappiness is not None:
        if not support.memory_swappiness and swappiness != -1:
            warnings.append(cgroups.SWAPPINESS_UNSUPPORTED_WARNING)
            res = attrs.evolve(res, memory_swappiness=None)
        elif not -1 <= swappiness <= 100:
            raise errors.InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if res.oom_kill_disable and not support.oom_kill_disable:
        warnings.append(cgroups.OOM_KILL_DISABLE_UNSUPPORTED_WARNING)
        res = attrs.evolve(res, oom_kill_disable=False)
    if res.oom_kill_disable and not res.memory:
        warnings.append(cgroups.OOM_KILL_DISABLE_NO_LIMIT_WARNING)
    res = blkio.validate(res, warnings, support)
    return attrs.evolve(host, resources=res) if res != host.resources else host


_RLIMITS = {
    "core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12,
    "nice": 13, "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15,
    "sigpending": 11, "stack": 3, "as": 9,
}


def validate_log_config(log_type: str, options: dict[str, str]) -> None:
    """A log driver this engine has, with options it takes (a container's or the daemon's)."""
    if log_type in _DOCKER_LOG_DRIVERS:
        raise errors.InvalidParameter(f"log driver {log_type!r} is not supported by pyengine (json-file or none)")
    if log_type not in ("json-file", "none"):  # dockerd looks for a plugin of that name
        raise errors.InvalidParameter(f'error looking up logging plugin {log_type}: plugin "{log_type}" not found')
    if log_type == "json-file":
        check_log_option_names(options)  # dockerd's words at create; a bad value fails its start
        try:
            validate_log_options(options)
        except errors.InvalidParameter as exc:
            raise errors.InvalidParameter(f"failed to initialize logging driver: {exc.message}") from None


def with_daemon_defaults(host: HostConfig, daemon) -> HostConfig:
    """What the daemon's options (engine.config.Config) fill in at create, as dockerd's:
    the log driver when none is named, and its options under the container's own when the
    container uses that driver; the /dev/shm size (0), cgroup namespace and IPC modes ("")
    when the container gives none."""
    log = host.log_config
    changes = {}
    if not log.type or log.type == daemon.log_driver:
        merged = {**daemon.log_opts, **log.options} if daemon.log_opts else log.options
        if log.type != daemon.log_driver or merged != log.options:
            changes["log_config"] = LogConfig(daemon.log_driver, merged)
    if not host.shm_size:
        changes["shm_size"] = daemon.default_shm_size
    if not host.cgroupns_mode:
        changes["cgroupns_mode"] = daemon.default_cgroupns_mode
    if not host.ipc_mode:
        changes["ipc_mode"] = daemon.default_ipc_mode
    return attrs.evolve(host, **changes) if changes else host


def no_new_privileges(security_opt, default: bool) -> bool:
    """--security-opt no-new-privileges[=|:true|false], the last one given; else `default`
    (the daemon's no-new-privileges)."""
    for opt in reversed(tuple(security_opt or ())):
        key, _, value = opt.replace(":", "=", 1).partition("=")
        if key == "no-new-privileges":
            return value != "false"
    return default


def validate_ulimit(ulimit: Ulimit) -> tuple[int, int, int]:
    """(resource number, soft, hard) of a known ulimit name whose soft ≤ hard."""
    name = ulimit.name
    if name not in _RLIMITS:
        raise errors.InvalidParameter(f"invalid ulimit type: {name}")
    soft, hard = ulimit.soft, ulimit.hard
    if soft > hard:
        raise errors.InvalidParameter(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return _RLIMITS[name], soft, hard


def rlimits(host: HostConfig, defaults=()) -> tuple[tuple[int, int, int], ...]:
    """The process's rlimits: `defaults` (the daemon's --default-ulimit), then the
    container's own over them."""
    # containerd gives containers nofile 1048576; never above what this daemon may grant
    # (raising a hard limit needs CAP_SYS_RESOURCE in the initial user namespace).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    limits = {7: (7, nofile, nofile)}
    for ulimit in (*defaults, *(host.ulimits or ())):
        number, soft, hard = validate_ulimit(ulimit)
        limits[number] = (number, soft, hard)
    return tuple(limits.values())


def process_env(env, hostname: str, tty: bool, linked=()) -> list[str]:
    """The environment a container's process (and each exec's) starts from, in dockerd's
    order: PATH, HOSTNAME, TERM with a TTY, legacy link variables, then the container's Env
    over them."""
    defaults = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}", *(["TERM=xterm"] if tty else []), *linked]
    return replace_or_append(defaults, env)


@attrs.frozen
class ExecUser:
    """Who a container's process runs as, and the HOME it gets when its env has none."""

    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary, the primary group first
    home: str = "/"


def resolve_user(rootfs: str, user: str, group_add=None) -> ExecUser:
    """"name|uid[:group|gid]" resolved against the container's /etc/passwd and /etc/group;
    a uid that has no entry gets gid 0 and home "/" (as runc)."""
    from engine.runtime import read_in_root

    return resolve_user_from(read_in_root(rootfs, "etc/passwd"), read_in_root(rootfs, "etc/group"), user, group_add)


def resolve_user_from(passwd_file: bytes | None, group_file: bytes | None, user: str, group_add=None) -> ExecUser:
    """resolve_user with the container's /etc/passwd and /etc/group already read (None: it
    could not be)."""
    user = user or "0"
    name, _, group = user.partition(":")
    passwd = _parse_db(passwd_file)
    groups = _parse_db(group_file)
    uid = gid = None
    username = None
    home = "/"
    if name.isdigit():
        uid = int(name)
        for entry in passwd:
            if len(entry) > 3 and entry[2] == name:
                username, gid = entry[0], int(entry[3])
                home = _home(entry)
                break
        gid = gid if gid is not None else 0
    else:
        for entry in passwd:
            if entry[0] == name and len(entry) > 3:
                username, uid, gid = name, int(entry[2]), int(entry[3])
                home = _home(entry)
                break
        if uid is None:
            raise errors.InvalidParameter(
                f"unable to find user {name}: no matching entries in passwd file"
            )
    if group:
        gid = _group_id(groups, group)
    # As dockerd (and runc): the primary group first, then the user's memberships in
    # /etc/group (only when the group was not given), then --group-add.
    supplementary = [gid]
    if username and not group:
        for entry in groups:
            if len(entry) > 3 and username in entry[3].split(",") and entry[2].isdigit():
                supplementary.append(int(entry[2]))
    for extra in group_add or []:
        supplementary.append(_group_id(groups, extra, "Unable"))
    return ExecUser(uid, gid, tuple(dict.fromkeys(supplementary)), home)


def _home(entry: list[str]) -> str:
    return entry[5] if len(entry) > 5 and entry[5] else "/"


def with_home(env: list[str], user: ExecUser) -> list[str]:
    """`env` with HOME=<the user's home> when it sets none: runc adds it to the process's
    environment, and programs (shells, git, pip) look there."""
    return env if any(e.startswith("HOME=") for e in env) else [*env, f"HOME={user.home}"]


def _group_id(groups: tuple[tuple[str, ...], ...], group: str, unable: str = "unable") -> int:
    """A group name or gid; not found, runc's message (dockerd capitalizes it for --group-add)."""
    if group.isdigit():
        return int(group)
    for entry in groups:
        if entry[0] == group and len(entry) > 2:
            return int(entry[2])
    raise errors.InvalidParameter(f"{unable} to find group {group}: no matching entries in group file")


@functools.lru_cache(maxsize=64)
def _parse_db(data: bytes | None) -> tuple[tuple[str, ...], ...]:
    """A passwd/group file's entries; () for None. Cached by content: the containers of one
    image read the same files at every start."""
    if data is None:
        return ()
    text = data.decode(locale.getpreferredencoding(False))
    # open()'s universal newlines, then its line iteration
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return tuple(tuple(line.split(":")) for line in lines if line.strip() and not line.startswith("#"))


def hosts_file(hostname: str, host: HostConfig) -> str:
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    for entry in host.extra_hosts or ():
        name, _, address = entry.partition(":")
        lines.append(f"{address}\t{name}")
    return "\n".join(lines) + "\n"


HOST_RESOLV_CONF = "/etc/resolv.conf"
_host_resolv: tuple = (None, [])  # ((st_ino, st_size, st_mtime_ns) it was read at, its lines)


def _host_resolv_conf() -> list[str]:
    """The host's resolv.conf lines, read again only when the file changed (every create
    writes a container's resolv.conf from it: one stat instead of an open and reads)."""
    global _host_resolv
    try:
        st = os.stat(HOST_RESOLV_CONF)
    except OSError:
        return []
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    seen, lines = _host_resolv
    if seen != key:
        try:
            with open(HOST_RESOLV_CONF) as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        _host_resolv = (key, lines)
    return list(lines)


def resolv_conf(host: HostConfig, dns: tuple[str, ...] = (), daemon=None) -> str:
    """The container's resolv.conf as dockerd writes it. Without --dns/--dns-search/--dns-opt
    of the container or of the daemon (`daemon`: engine.config.Config), nor `dns` (the
    embedded DNS of a user network): the host's file, verbatim for the host's network, else
    without loopback resolvers (unreachable from the container's netns) and with Docker's
    public defaults if none is left. With them: search, nameserver and options lines, each
    the container's, else the daemon's, else the host's (--dns-search . means no search)."""
    host_lines = _host_resolv_conf()
    d_dns, d_search, d_options = (daemon.dns, daemon.dns_search, daemon.dns_options) if daemon else ((), (), ())
    given = dns or host.dns or host.dns_search or host.dns_options or d_dns or d_search or d_options
    if not given and host.shares_host_network:
        return "".join(line + "\n" for line in host_lines)
    if not given:
        kept = [line for line in host_lines if not _loopback(_values([line], "nameserver"))]
        if not _values(kept, "nameserver"):
            kept += [f"nameserver {s}" for s in DEFAULT_DNS]
        return "".join(line + "\n" for line in kept)
    servers = (list(dns or host.dns or d_dns)
               or [s for s in _values(host_lines, "nameserver") if not _loopback([s])])
    search = list(host.dns_search or d_search) or _values(host_lines, "search")
    options = list(host.dns_options or d_options) or _values(host_lines, "options")
    out = []
    if search and " ".join(search).strip() != ".":
        out.append("search " + " ".join(search))
    out += [f"nameserver {s}" for s in servers]
    if options:
        out.append("options " + " ".join(options))
    return "".join(line + "\n" for line in out)


DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")  # dockerd's, when the host has only loopback resolvers


def _values(lines: list[str], keyword: str) -> list[str]:
    """The words after `keyword` on the resolv.conf lines that start with it."""
    return [w for line in lines if (words := line.split())[:1] == [keyword] for w in words[1:]]


def _loopback(servers: list[str]) -> bool:
    return any(s.startswith("127.") or s == "::1" for s in servers)


