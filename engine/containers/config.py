"""Docker create-body → normalized Config/HostConfig (once, at create), and the record → the
runtime's flat spec (at each start). The runtime never sees API JSON."""

from __future__ import annotations

import os
import re
import resource
import shlex
import signal

from engine import errors
from engine.containers.health import merge_healthcheck, validate_healthcheck
from engine.containers.model import RestartPolicy

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MIN_MEMORY = 6 * 1024 * 1024
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# What `docker inspect` shows for fields the client left out (dockerd 20.10 defaults).
_HOST_CONFIG_DEFAULTS = {
    "Binds": None,
    "ContainerIDFile": "",
    "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default",
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "CapAdd": None,
    "CapDrop": None,
    "CgroupnsMode": "private",
    "Dns": [],
    "DnsOptions": [],
    "DnsSearch": [],
    "ExtraHosts": None,
    "GroupAdd": None,
    "IpcMode": "private",
    "Cgroup": "",
    "Links": None,
    "OomScoreAdj": 0,
    "PidMode": "",
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "SecurityOpt": None,
    "UTSMode": "",
    "UsernsMode": "",
    "ShmSize": 67108864,
    "Runtime": "runc",
    "ConsoleSize": [0, 0],
    "Isolation": "",
    "CpuShares": 0,
    "Memory": 0,
    "NanoCpus": 0,
    "CgroupParent": "",
    "BlkioWeight": 0,
    "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": None,
    "BlkioDeviceWriteBps": None,
    "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None,
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "Devices": [],
    "DeviceCgroupRules": None,
    "DeviceRequests": None,
    "KernelMemory": 0,
    "KernelMemoryTCP": 0,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "MemorySwappiness": None,
    "OomKillDisable": False,
    "PidsLimit": None,
    "Ulimits": None,
    "CpuCount": 0,
    "CpuPercent": 0,
    "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
    "Mounts": None,
    "MaskedPaths": None,
    "ReadonlyPaths": None,
    "Tmpfs": None,
    "Init": None,
}


def _as_list(value, field: str) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidParameter(f"{field} must be a list of strings")
    return list(value)


def _int_field(host: dict, field: str) -> int:
    value = host.get(field) or 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.InvalidParameter(f"invalid value for {field}: {value!r}")
    return value


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
    """Image env first, request overrides by key (Docker's order)."""
    merged: dict[str, str] = {}
    for entry in [*image_env, *request_env]:
        key = entry.split("=", 1)[0]
        if not key:
            raise errors.InvalidParameter(f"invalid environment variable: {entry}")
        merged[key] = entry
    return list(merged.values())


def normalize_create(body: dict, image_config: dict, image_ref: str) -> tuple[dict, dict, list[str]]:
    """Validate a create body and merge the image's defaults in, Docker's way.

    Returns (Config, HostConfig, warnings); raises InvalidParameter naming the field."""
    if not isinstance(body, dict):
        raise errors.InvalidParameter("container config must be a JSON object")
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise errors.InvalidParameter("HostConfig must be a JSON object")
    warnings: list[str] = []

    cmd = body.get("Cmd")
    cmd = shlex.split(cmd) if isinstance(cmd, str) else _as_list(cmd, "Cmd")
    entrypoint = body.get("Entrypoint")
    entrypoint = [entrypoint] if isinstance(entrypoint, str) else entrypoint
    if entrypoint is None:
        entrypoint = list(image_config.get("Entrypoint") or [])
        if not cmd:
            cmd = list(image_config.get("Cmd") or [])
    else:
        entrypoint = _as_list(entrypoint, "Entrypoint")
        # An explicit entrypoint (even "") drops the image's Cmd, as Docker does.
        entrypoint = [e for e in entrypoint if e != ""] if entrypoint == [""] else entrypoint
    if not entrypoint and not cmd:
        raise errors.InvalidParameter("No command specified")

    labels = dict(image_config.get("Labels") or {})
    labels.update(body.get("Labels") or {})
    stop_signal = body.get("StopSignal") or image_config.get("StopSignal") or None
    if stop_signal:
        parse_signal(stop_signal)
    stop_timeout = body.get("StopTimeout")
    if stop_timeout is not None and not isinstance(stop_timeout, int):
        raise errors.InvalidParameter("StopTimeout must be an integer")

    config = {
        "Hostname": body.get("Hostname") or "",
        "Domainname": body.get("Domainname") or "",
        "User": body.get("User") if body.get("User") else (image_config.get("User") or ""),
        "AttachStdin": bool(body.get("AttachStdin")),
        "AttachStdout": bool(body.get("AttachStdout")),
        "AttachStderr": bool(body.get("AttachStderr")),
        "ExposedPorts": body.get("ExposedPorts") or image_config.get("ExposedPorts") or None,
        "Tty": bool(body.get("Tty")),
        "OpenStdin": bool(body.get("OpenStdin")),
        "StdinOnce": bool(body.get("StdinOnce")),
        "Env": merge_env(list(image_config.get("Env") or []), _as_list(body.get("Env"), "Env")),
        "Cmd": cmd or None,
        "Image": image_ref,
        "Volumes": body.get("Volumes") or image_config.get("Volumes") or None,
        "WorkingDir": body.get("WorkingDir") or image_config.get("WorkingDir") or "",
        "Entrypoint": entrypoint or None,
        "OnBuild": None,
        "Labels": labels,
    }
    if body.get("MacAddress"):
        config["MacAddress"] = body["MacAddress"]  # applied to the primary network's endpoint
    healthcheck = merge_healthcheck(body.get("Healthcheck"), image_config.get("Healthcheck"))
    validate_healthcheck(healthcheck)
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    shell = body.get("Shell") or image_config.get("Shell")
    if shell:
        config["Shell"] = _as_list(shell, "Shell")
    if stop_signal:
        config["StopSignal"] = stop_signal
    if stop_timeout is not None:
        config["StopTimeout"] = stop_timeout
    if config["WorkingDir"] and not config["WorkingDir"].startswith("/"):
        raise errors.InvalidParameter(
            f"the working directory '{config['WorkingDir']}' is invalid, it needs to be an absolute path"
        )

    host_config = {**_HOST_CONFIG_DEFAULTS, **{k: v for k, v in host.items() if v is not None}}
    _validate_host_config(host_config, warnings)
    return config, host_config, warnings


def _validate_host_config(host: dict, warnings: list[str]) -> None:
    memory = _int_field(host, "Memory")
    if memory and memory < MIN_MEMORY:
        raise errors.InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = _int_field(host, "MemorySwap")
    if memory and not swap:
        host["MemorySwap"] = swap = 2 * memory  # dockerd's default: swap as large as memory
    if swap > 0 and memory and swap < memory:
        raise errors.InvalidParameter(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if swap and not memory and swap != -1:
        raise errors.InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    nano = _int_field(host, "NanoCpus")
    if nano and (_int_field(host, "CpuQuota") or _int_field(host, "CpuPeriod")):
        raise errors.InvalidParameter(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        )
    if nano < 0 or nano > os.cpu_count() * 1_000_000_000:
        raise errors.InvalidParameter(
            f"Range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only "
            f"{os.cpu_count()} CPUs available"
        )
    if _int_field(host, "CpuShares") < 0:
        raise errors.InvalidParameter("invalid CPU shares")

    policy = RestartPolicy.from_docker(host.get("RestartPolicy"))
    policy.validate()
    host["RestartPolicy"] = policy.to_docker()
    name = policy.name
    if host.get("AutoRemove") and name not in ("", "no"):
        raise errors.InvalidParameter("can't create 'AutoRemove' container with restart policy")

    log_config = host.get("LogConfig") or {}
    log_type = log_config.get("Type") or "json-file"
    if log_type not in ("json-file", "none"):
        raise errors.InvalidParameter(f'logger: no log driver named \'{log_type}\' is registered')
    host["LogConfig"] = {"Type": log_type, "Config": dict(log_config.get("Config") or {})}
    if log_type == "json-file":
        from engine.containers.logs import validate_options

        validate_options(host["LogConfig"]["Config"])

    for field in ("Binds", "CapAdd", "CapDrop", "Dns", "ExtraHosts", "GroupAdd", "SecurityOpt"):
        if host.get(field) is not None:
            _as_list(host[field], field)
    for bind in host.get("Binds") or []:
        parse_bind(bind)
    from engine.containers import devices
    from engine.runtime import resolve_capabilities

    devices.validate(host)
    resolve_capabilities(host.get("CapAdd") or [], host.get("CapDrop") or [], bool(host.get("Privileged")))
    for ulimit in host.get("Ulimits") or []:
        _rlimit(ulimit)
    for opt in host.get("SecurityOpt") or []:
        if opt.split("=", 1)[0].split(":", 1)[0] not in ("no-new-privileges", "seccomp", "apparmor", "label"):
            raise errors.InvalidParameter(f"invalid --security-opt: {opt!r}")

    mode = host.get("NetworkMode") or "default"
    if not isinstance(mode, str) or mode == "container:":
        raise errors.InvalidParameter(f"invalid NetworkMode: {mode!r}")
    # Network names are checked by the network manager (engine.networks).
    for field, allowed in (("PidMode", ("", "host")), ("IpcMode", ("", "private", "shareable", "host", "none")), ("UTSMode", ("", "host"))):
        if (host.get(field) or "") not in allowed:
            raise errors.InvalidParameter(f"invalid {field}: {host.get(field)}")
    if host.get("PidsLimit") is not None and not isinstance(host["PidsLimit"], int):
        raise errors.InvalidParameter("invalid PidsLimit")
    _validate_kernel_knobs(host, warnings)


def _validate_kernel_knobs(host: dict, warnings: list[str]) -> None:
    """OomScoreAdj, CgroupnsMode, CgroupParent, Sysctls, MemorySwappiness, OomKillDisable and
    the per-device block I/O limits, with dockerd 20.10's messages and warnings; what this
    host's cgroups cannot apply is discarded, as dockerd does."""
    from engine.containers import blkio, cgroupparent, sysctls
    from engine.runtime import cgroups

    score = _int_field(host, "OomScoreAdj")
    if not -1000 <= score <= 1000:
        raise errors.InvalidParameter(f"Invalid value {score}, range for oom score adj is [-1000, 1000]")
    mode = host.get("CgroupnsMode")
    if mode in (None, ""):
        host["CgroupnsMode"] = "private"  # this daemon's default on v1 and v2
    elif mode not in ("host", "private"):
        raise errors.InvalidParameter(f"invalid cgroup namespace mode: {mode}")
    cgroupparent.validate(host)
    sysctls.validate(host)
    if (host.get("MemorySwappiness") in (None, -1) and host.get("OomKillDisable") is not True
            and not any(host.get(k) for k in blkio.FIELDS)):
        return  # nothing that needs the host's cgroups looked at
    support = cgroups.support()
    swappiness = host.get("MemorySwappiness")
    if swappiness is not None:
        if not isinstance(swappiness, int) or isinstance(swappiness, bool):
            raise errors.InvalidParameter(f"invalid value for MemorySwappiness: {swappiness!r}")
        if not support.memory_swappiness and swappiness != -1:
            warnings.append(cgroups.SWAPPINESS_UNSUPPORTED_WARNING)
            host["MemorySwappiness"] = None
        elif not -1 <= swappiness <= 100:
            raise errors.InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    if host.get("OomKillDisable") is not None and not isinstance(host["OomKillDisable"], bool):
        raise errors.InvalidParameter("invalid value for OomKillDisable: a boolean is expected")
    if host.get("OomKillDisable") and not support.oom_kill_disable:
        warnings.append(cgroups.OOM_KILL_DISABLE_UNSUPPORTED_WARNING)
        host["OomKillDisable"] = False
    if host.get("OomKillDisable") and not host.get("Memory"):
        warnings.append(cgroups.OOM_KILL_DISABLE_NO_LIMIT_WARNING)
    blkio.validate(host, warnings, support)


def parse_bind(bind: str) -> tuple[str, str, bool]:
    """"/host:/ctr[:ro|rw,…]" or "volume:/ctr[:…]" → (source, destination, readonly). A source
    that is not an absolute path names a volume (engine.volumes mounts those)."""
    parts = bind.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[1]:
        raise errors.InvalidParameter(f"invalid volume specification: '{bind}'")
    source, destination = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    if not destination.startswith("/"):
        raise errors.InvalidParameter(
            f"invalid volume specification: '{bind}': invalid mount config for type \"bind\": "
            "invalid mount path: '{destination}' mount path must be absolute"
        )
    if not source.startswith("/"):
        from engine.volumes.model import NAME_RE

        if not NAME_RE.match(source):
            raise errors.InvalidParameter(
                f"invalid volume specification: '{bind}': \"{source}\" includes invalid characters for a "
                "local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to "
                "pass a host directory, use absolute path"
            )
    for option in options:
        if option not in ("ro", "rw", "z", "Z", "rprivate", "private", "rslave", "slave", "rshared", "shared", "nocopy"):
            raise errors.InvalidParameter(f"invalid mode: {option}")
    return source, destination, "ro" in options


_RLIMITS = {
    "core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12,
    "nice": 13, "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15,
    "sigpending": 11, "stack": 3, "as": 9,
}


def _rlimit(ulimit: dict) -> tuple[int, int, int]:
    name = (ulimit or {}).get("Name", "")
    if name not in _RLIMITS:
        raise errors.InvalidParameter(f"invalid ulimit type: {name}")
    soft, hard = int(ulimit.get("Soft", 0)), int(ulimit.get("Hard", 0))
    if soft > hard:
        raise errors.InvalidParameter(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return _RLIMITS[name], soft, hard


def rlimits(host: dict) -> tuple[tuple[int, int, int], ...]:
    # containerd gives containers nofile 1048576; never above what this daemon may grant
    # (raising a hard limit needs CAP_SYS_RESOURCE in the initial user namespace).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    limits = {7: (7, nofile, nofile)}
    for ulimit in host.get("Ulimits") or []:
        number, soft, hard = _rlimit(ulimit)
        limits[number] = (number, soft, hard)
    return tuple(limits.values())


def process_env(config: dict, hostname: str) -> list[str]:
    """The env the process sees: PATH and HOSTNAME added when missing, TERM with a TTY."""
    env = list(config.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    extra = []
    if "PATH" not in keys:
        extra.append(f"PATH={DEFAULT_PATH}")
    if "HOSTNAME" not in keys:
        extra.append(f"HOSTNAME={hostname}")
    if config.get("Tty") and "TERM" not in keys:
        extra.append("TERM=xterm")
    return extra + env


def resolve_user(rootfs: str, user: str, group_add: list[str] | None = None) -> tuple[int, int, tuple[int, ...]]:
    """"name|uid[:group|gid]" resolved against the container's /etc/passwd and /etc/group."""
    user = user or "0"
    name, _, group = user.partition(":")
    passwd = _read_db(os.path.join(rootfs, "etc/passwd"))
    groups = _read_db(os.path.join(rootfs, "etc/group"))
    uid = gid = None
    username = None
    if name.isdigit():
        uid = int(name)
        for entry in passwd:
            if len(entry) > 3 and entry[2] == name:
                username, gid = entry[0], int(entry[3])
                break
        gid = gid if gid is not None else 0
    else:
        for entry in passwd:
            if entry[0] == name and len(entry) > 3:
                username, uid, gid = name, int(entry[2]), int(entry[3])
                break
        if uid is None:
            raise errors.InvalidParameter(
                f"unable to find user {name}: no matching entries in passwd file"
            )
    if group:
        gid = _group_id(groups, group)
    supplementary = []
    if username:
        for entry in groups:
            if len(entry) > 3 and username in entry[3].split(",") and entry[2].isdigit():
                supplementary.append(int(entry[2]))
    for extra in group_add or []:
        supplementary.append(_group_id(groups, extra))
    return uid, gid, tuple(dict.fromkeys(supplementary))


def _group_id(groups: list[list[str]], group: str) -> int:
    if group.isdigit():
        return int(group)
    for entry in groups:
        if entry[0] == group and len(entry) > 2:
            return int(entry[2])
    raise errors.InvalidParameter(f"unable to find group {group}: no matching entries in group file")


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def hosts_file(hostname: str, host: dict) -> str:
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    for entry in host.get("ExtraHosts") or []:
        name, _, address = entry.partition(":")
        lines.append(f"{address}\t{name}")
    return "\n".join(lines) + "\n"


def resolv_conf(host: dict) -> str:
    """Host's resolv.conf minus loopback resolvers (unreachable from a container's netns),
    overridden by --dns/--dns-search/--dns-opt."""
    try:
        with open("/etc/resolv.conf") as f:
            host_lines = f.read().splitlines()
    except OSError:
        host_lines = []
    servers = host.get("Dns") or [
        line.split()[1] for line in host_lines
        if line.startswith("nameserver") and len(line.split()) > 1
        and not line.split()[1].startswith("127.") and line.split()[1] != "::1"
    ]
    search = host.get("DnsSearch") or [
        word for line in host_lines if line.startswith("search") for word in line.split()[1:]
    ]
    options = host.get("DnsOptions") or [
        word for line in host_lines if line.startswith("options") for word in line.split()[1:]
    ]
    out = [f"nameserver {s}" for s in servers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"
