"""`run` / `create` flags and their translation into the POST /containers/create body, as the
docker CLI does it (cli/command/container/opts.go)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._app import arg
from engine.units import parse_ulimit

from ._format import parse_duration, ram_in_bytes

RUN_ARGS = [
    arg("-d", "--detach", action="store_true", help="Run in the background, print the id"),
    arg("-i", "--interactive", action="store_true", help="Keep STDIN open"),
    arg("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY"),
    arg("--rm", action="store_true", help="Remove the container when it exits"),
    arg("--name", help="Assign a name to the container"),
    arg("-e", "--env", action="append", default=[], help="Set environment variables"),
    arg("--env-file", action="append", default=[], help="Read environment variables from a file"),
    arg("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    arg("-w", "--workdir", default="", help="Working directory inside the container"),
    arg("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image"),
    arg("-l", "--label", action="append", default=[], help="Set meta data on a container"),
    arg("-h", "--hostname", default="", help="Container host name"),
    arg("--domainname", default="", help="Container NIS domain name"),
    arg("--network", "--net", default="default", help="Connect a container to a network"),
    arg("--cap-add", action="append", default=[], help="Add Linux capabilities"),
    arg("--cap-drop", action="append", default=[], help="Drop Linux capabilities"),
    arg("--privileged", action="store_true", help="Give extended privileges"),
    arg("--device", action="append", default=[], help="Add a host device to the container"),
    arg("--device-cgroup-rule", action="append", default=[], help="Add a rule to the cgroup allowed devices list"),
    arg("--sysctl", action="append", default=[], help="Sysctl options"),
    arg("--oom-score-adj", type=int, default=0, help="Tune host's OOM preferences (-1000 to 1000)"),
    arg("--oom-kill-disable", action="store_true", help="Disable OOM Killer"),
    arg("--memory-swappiness", type=int, default=-1, help="Tune container memory swappiness (0 to 100)"),
    arg("--cgroup-parent", default="", help="Optional parent cgroup for the container"),
    arg("--cgroupns", default="", help="Cgroup namespace to use (host|private)"),
    arg("--blkio-weight", type=int, default=0, help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    arg("--blkio-weight-device", action="append", default=[], help="Block IO weight (relative device weight)"),
    arg("--device-read-bps", action="append", default=[], help="Limit read rate (bytes per second) from a device"),
    arg("--device-write-bps", action="append", default=[], help="Limit write rate (bytes per second) to a device"),
    arg("--device-read-iops", action="append", default=[], help="Limit read rate (IO per second) from a device"),
    arg("--device-write-iops", action="append", default=[], help="Limit write rate (IO per second) to a device"),
    arg("--read-only", action="store_true", help="Mount the root filesystem read-only"),
    arg("-m", "--memory", default=None, help="Memory limit"),
    arg("--memory-swap", default=None, help="Swap limit equal to memory plus swap: -1 unlimited"),
    arg("--memory-reservation", default=None, help="Memory soft limit"),
    arg("--cpus", default=None, help="Number of CPUs"),
    arg("-c", "--cpu-shares", type=int, default=0, help="CPU shares (relative weight)"),
    arg("--cpu-period", type=int, default=0, help="Limit CPU CFS period"),
    arg("--cpu-quota", type=int, default=0, help="Limit CPU CFS quota"),
    arg("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)"),
    arg("--pids-limit", type=int, default=None, help="Tune container pids limit (-1 unlimited)"),
    arg("--restart", default="no", help="Restart policy to apply when a container exits"),
    arg("--log-driver", default="", help="Logging driver for the container"),
    arg("--log-opt", action="append", default=[], help="Log driver options"),
    arg("--stop-signal", default=None, help="Signal to stop the container"),
    arg("--stop-timeout", type=int, default=None, help="Timeout (in seconds) to stop a container"),
    arg("-v", "--volume", action="append", default=[], help="Bind mount a volume"),
    arg("--tmpfs", action="append", default=[], help="Mount a tmpfs directory"),
    arg("--volumes-from", action="append", default=[], help="Mount volumes from the specified container(s)"),
    arg("-p", "--publish", action="append", default=[], help="Publish a container's port(s)"),
    arg("-P", "--publish-all", action="store_true", help="Publish all exposed ports"),
    arg("--expose", action="append", default=[], help="Expose a port or a range of ports"),
    arg("--add-host", action="append", default=[], help="Add a custom host-to-IP mapping"),
    arg("--dns", action="append", default=[], help="Set custom DNS servers"),
    arg("--dns-search", action="append", default=[], help="Set custom DNS search domains"),
    arg("--dns-option", action="append", default=[], help="Set DNS options"),
    arg("--group-add", action="append", default=[], help="Add additional groups to join"),
    arg("--security-opt", action="append", default=[], help="Security Options"),
    arg("--shm-size", default=None, help="Size of /dev/shm"),
    arg("--pid", default=None, help="PID namespace to use (host, container:<name|id>)"),
    arg("--ipc", default=None, help="IPC mode to use (private, shareable, none, host, container:<name|id>)"),
    arg("--uts", default=None, help="UTS namespace to use (host)"),
    arg("--ulimit", action="append", default=[], help="Ulimit options"),
    arg("--health-cmd", default="", help="Command to run to check health"),
    arg("--health-interval", default="0", help="Time between running the check (ms|s|m|h) (default 0s)"),
    arg("--health-timeout", default="0", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
    arg("--health-start-period", default="0",
        help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)"),
    arg("--health-retries", type=int, default=0, help="Consecutive failures needed to report unhealthy"),
    arg("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK"),
    arg("--init", action="store_true", help="Run an init inside the container that forwards signals and reaps processes"),
    arg("--platform", default=None, help="Set platform if server is multi-platform capable"),
    arg("--mount", action="append", default=[], help="Attach a filesystem mount to the container"),
    arg("--network-alias", action="append", default=[], help="Add network-scoped alias for the container"),
    arg("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)"),
    arg("--ip6", default="", help="IPv6 address (e.g., 2001:db8::33)"),
    arg("--link", action="append", default=[], help="Add link to another container"),
    arg("--mac-address", default="", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    arg("--label-file", action="append", default=[], help="Read in a line delimited file of labels"),
    arg("--cidfile", default="", help="Write the container ID to the file"),
    arg("--cpuset-mems", default="", help="MEMs in which to allow execution (0-3, 0,1)"),
    arg("--kernel-memory", default=None, help="Kernel memory limit (deprecated)"),
    arg("--pull", default="missing", help='Pull image before running ("always", "missing", "never")'),
    arg("-q", "--quiet", action="store_true", help="Suppress the pull output"),
    arg("--runtime", default="", help="Runtime to use for this container"),
    arg("--isolation", default="", help="Container isolation technology"),
    arg("--storage-opt", action="append", default=[], help="Storage driver options for the container"),
    arg("--userns", default="", help="User namespace to use"),
    arg("--volume-driver", default="", help="Optional volume driver for the container"),
    arg("image", help="Image"),
]

class OptError(ValueError):
    """A bad flag value; the CLI reports it on one line and exits 125."""


def parse_healthcheck(a: argparse.Namespace) -> dict[str, Any] | None:
    """--health-* / --no-healthcheck -> Config.Healthcheck (durations in ns), as the docker CLI."""
    durations = {}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        text = getattr(a, "health_" + flag)
        try:
            durations[key] = round(parse_duration(text) * 1_000_000_000)
        except ValueError as exc:
            raise _flag_err("--health-" + flag.replace("_", "-"), text, str(exc)) from None
    have = bool(a.health_cmd or a.health_retries or any(durations.values()))
    if a.no_healthcheck:
        if have:
            raise OptError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    for key, value in (*durations.items(), ("Retries", a.health_retries)):
        if value < 0:
            flag = {"Interval": "interval", "Timeout": "timeout", "StartPeriod": "start-period"}.get(key, "retries")
            raise OptError(f"--health-{flag} cannot be negative")
    return {"Test": ["CMD-SHELL", a.health_cmd] if a.health_cmd else None, **durations,
            "Retries": a.health_retries}


def _flag_err(flag: str, value: str, why: str) -> OptError:
    return OptError(f'invalid argument "{value}" for "{flag}" flag: {why}')


def parse_env(items: list[str], env_files: list[str]) -> list[str]:
    out: list[str] = []
    for path in env_files:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise OptError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}")
        for line in lines:
            line = line.lstrip()
            if not line or line.startswith("#"):
                continue
            out.extend(_env_item(line))
    for item in items:
        out.extend(_env_item(item))
    return out


def _env_item(item: str) -> list[str]:
    if "=" in item:
        if item.startswith("="):
            raise OptError(f"invalid environment variable: {item}")
        return [item]
    if item in os.environ:
        return [f"{item}={os.environ[item]}"]
    return []


def parse_kv_list(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def parse_restart(policy: str) -> dict[str, Any]:
    """docker's ParseRestartPolicy: no | always | unless-stopped | on-failure[:N]."""
    if policy == "":
        return {"Name": "", "MaximumRetryCount": 0}
    name, sep, count = policy.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise OptError(f"invalid restart policy {name}")
    if sep:
        if name != "on-failure":
            raise OptError(f"maximum retry count cannot be used with restart policy '{name}'")
        try:
            n = int(count)
        except ValueError:
            raise OptError("maximum retry count must be an integer") from None
        if n < 0:
            raise OptError("invalid restart policy: maximum retry count cannot be negative")
        return {"Name": name, "MaximumRetryCount": n}
    return {"Name": name, "MaximumRetryCount": 0}


def size_flag(flag: str, value: str | None, allow_minus_one: bool = False) -> int:
    """A size flag's bytes ("64m"); 0 when not given."""
    if value is None:
        return 0
    if allow_minus_one and value == "-1":
        return -1
    try:
        return ram_in_bytes(value)
    except ValueError as exc:
        raise _flag_err(flag, value, str(exc)) from None


def parse_cpus(value: str | None) -> int:
    if value is None:
        return 0
    try:
        cpus = float(value)
    except ValueError:
        raise _flag_err("--cpus", value, "failed to parse " + value + " as a rational number")
    nanos = round(cpus * 1e9)
    if nanos < 0:
        raise _flag_err("--cpus", value, "value must be positive")
    return int(nanos)


def _port_range(text: str, flag_value: str) -> list[int]:
    if text == "":
        return []
    lo, _, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if hi else a
    except ValueError:
        raise OptError(f"invalid port format for --publish: {flag_value}") from None
    if not (0 < a <= 65535 and 0 < b <= 65535) or b < a:
        raise OptError(f"invalid port format for --publish: {flag_value}")
    return list(range(a, b + 1))


def parse_publish(items: list[str]) -> tuple[dict, dict]:
    """-p [ip:][hostPort:]containerPort[/proto] -> (ExposedPorts, PortBindings)."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict]] = {}
    for item in items:
        spec, _, proto = item.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise OptError(f"invalid proto: {proto}")
        if spec.startswith("["):  # [ipv6]:host:container
            end = spec.index("]")
            ip, rest = spec[1:end], spec[end + 2 :]
            parts = [ip] + rest.split(":")
        else:
            parts = spec.split(":")
        if len(parts) == 1:
            ip, host, cont = "", "", parts[0]
        elif len(parts) == 2:
            ip, (host, cont) = "", parts
        elif len(parts) == 3:
            ip, host, cont = parts
        else:
            raise OptError(f"invalid port format for --publish: {item}")
        cports = _port_range(cont, item)
        if not cports:
            raise OptError(f"no port specified: {item}<empty>")
        hports = _port_range(host, item)
        if hports and len(hports) != len(cports) and len(hports) != 1:
            raise OptError(f"invalid ranges specified for container and host ports: {item}")
        for i, cp in enumerate(cports):
            key = f"{cp}/{proto}"
            exposed[key] = {}
            if not hports:
                hp = ""
            elif len(hports) == 1 and len(cports) > 1:
                hp = str(hports[0])
            else:
                hp = str(hports[i])
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    return exposed, bindings


def parse_volumes(items: list[str]) -> tuple[list[str], dict[str, dict]]:
    """-v host:ctr[:opts] -> Binds; -v /ctr -> an anonymous volume in Config.Volumes."""
    binds: list[str] = []
    volumes: dict[str, dict] = {}
    for item in items:
        parts = item.split(":")
        if len(parts) == 1:
            if not parts[0].startswith("/"):
                raise OptError(f"invalid volume specification: '{item}'")
            volumes[parts[0]] = {}
        elif len(parts) in (2, 3):
            if not parts[1].startswith("/"):
                raise OptError(f"invalid volume specification: '{item}'")
            if parts[0].startswith("/") or parts[0].startswith("."):
                parts[0] = os.path.abspath(parts[0])
            binds.append(":".join(parts))
        else:
            raise OptError(f"invalid volume specification: '{item}'")
    return binds, volumes


_GO_BOOLS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
             "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}


def parse_mount(spec: str) -> dict[str, Any]:
    """--mount type=bind,src=/a,dst=/b,ro,… (CSV, as the docker CLI reads it) -> a Mount of
    the API; a volume mount unless the type says otherwise."""
    import csv

    def fail(why: str) -> OptError:
        return _flag_err("--mount", spec, why)

    mount: dict[str, Any] = {"Type": "volume"}
    options: dict[str, dict[str, Any]] = {}
    fields = next(csv.reader([spec]), [])
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep and key in ("readonly", "ro"):
            mount["ReadOnly"] = True
            continue
        if not sep and key == "volume-nocopy":
            options.setdefault("VolumeOptions", {})["NoCopy"] = True
            continue
        if not sep:
            raise fail(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            mount["Type"] = value.lower()
        elif key in ("source", "src"):
            mount["Source"] = os.path.abspath(value) if value == "." or value.startswith("./") else value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro", "volume-nocopy"):
            if value not in _GO_BOOLS:
                raise fail(f"invalid value for {key}: {value}")
            if key == "volume-nocopy":
                options.setdefault("VolumeOptions", {})["NoCopy"] = _GO_BOOLS[value]
            else:
                mount["ReadOnly"] = _GO_BOOLS[value]
        elif key == "consistency":
            mount["Consistency"] = value.lower()
        elif key == "bind-propagation":
            options.setdefault("BindOptions", {})["Propagation"] = value.lower()
        elif key in ("volume-label", "volume-opt"):
            name, _, item = value.partition("=")
            volume = options.setdefault("VolumeOptions", {})
            target = volume.setdefault("Labels", {}) if key == "volume-label" else \
                volume.setdefault("DriverConfig", {}).setdefault("Options", {})
            target[name] = item
        elif key == "volume-driver":
            options.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = value
        elif key == "tmpfs-size":
            try:
                options.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(value)
            except ValueError:
                raise fail(f"invalid value for {key}: {value}") from None
        elif key == "tmpfs-mode":
            try:
                options.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
            except ValueError:
                raise fail(f"invalid value for {key}: {value}") from None
        else:
            raise fail(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise fail("target is required")
    for kind, prefix in (("VolumeOptions", "volume"), ("BindOptions", "bind"), ("TmpfsOptions", "tmpfs")):
        if kind in options and mount["Type"] != prefix:
            raise fail(f"cannot mix '{prefix}-*' options with mount type '{mount['Type']}'")
    return {**mount, **options}


def read_label_files(paths: list[str]) -> list[str]:
    """--label-file: one key=value per line; blank lines and # comments skipped."""
    out = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise OptError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
        out += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return out


def parse_tmpfs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        path, _, opts = item.partition(":")
        if not path.startswith("/"):
            raise OptError(f"invalid tmpfs specification: '{item}'")
        out[path] = opts
    return out


def parse_ulimits(items: list[str]) -> list[dict]:
    out = []
    for item in items:
        try:
            name, soft, hard = parse_ulimit(item)
        except ValueError:
            raise OptError(f"invalid ulimit argument: {item}") from None
        out.append({"Name": name, "Soft": soft, "Hard": hard})
    return out


def parse_device(spec: str) -> dict[str, str]:
    """--device HOST[:CONTAINER][:PERMS] as the docker CLI reads it (a second field made only of
    r/w/m is the permissions)."""
    parts = spec.split(":")
    if len(parts) > 3 or not parts[0]:
        raise OptError(f"invalid device specification: {spec}")
    inside, perms = "", "rwm"
    if len(parts) == 3:
        perms = parts[2]
    if len(parts) >= 2:
        if parts[1] and not set(parts[1]) - set("rwm") and len(parts[1]) <= 3:
            perms = parts[1]
        else:
            inside = parts[1]
    if not perms or set(perms) - set("rwm"):
        raise OptError(f"invalid device specification: {spec}")
    return {"PathOnHost": parts[0], "PathInContainer": inside or parts[0], "CgroupPermissions": perms}


#: The docker CLI's client-side sysctl check (opts.ValidateSysctl): namespaced keys only.
_SYSCTL_KEYS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}


def parse_sysctls(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not (key in _SYSCTL_KEYS or key.startswith(("net.", "fs.mqueue."))):
            raise OptError(f"invalid argument \"{value}\" for \"--sysctl\" flag: sysctl '{value}' is not whitelisted")
        out[key] = val
    return out


def _device_value(flag: str, value: str) -> tuple[str, str]:
    path, sep, rest = value.partition(":")
    if not sep or not path:
        raise _flag_err(flag, value, f"bad format: {value}")
    if not path.startswith("/dev/"):
        raise _flag_err(flag, value, f"bad format for device path: {value}")
    return path, rest


def parse_weight_devices(values: list[str]) -> list[dict[str, Any]]:
    out = []
    for value in values:
        path, weight = _device_value("--blkio-weight-device", value)
        if not weight.isdigit() or (int(weight) and not 10 <= int(weight) <= 1000):
            raise _flag_err("--blkio-weight-device", value, f"invalid weight for device: {value}")
        out.append({"Path": path, "Weight": int(weight)})
    return out


def parse_throttle_devices(flag: str, values: list[str], bps: bool) -> list[dict[str, Any]]:
    out = []
    for value in values:
        path, rate = _device_value(flag, value)
        try:
            number = ram_in_bytes(rate) if bps else int(rate)
            if number < 0:
                raise ValueError
        except ValueError:
            unit = "[<unit>]" if bps else ""
            extra = " Unit is optional and can be kb, mb, or gb" if bps else ""
            raise _flag_err(flag, value, f"invalid rate for device: {value}. The correct format is "
                                         f"<device-path>:<number>{unit}. Number must be a positive integer.{extra}") from None
        out.append({"Path": path, "Rate": number})
    return out


def kernel_knobs(a: argparse.Namespace) -> dict[str, Any]:
    """--sysctl, --oom-*, --memory-swappiness, --cgroup-parent, --cgroupns, --blkio-*, --device-*-bps/iops."""
    if a.cgroupns not in ("", "host", "private"):
        raise OptError(f"--cgroupns: invalid CGROUP mode: {a.cgroupns}")
    host: dict[str, Any] = {
        "OomScoreAdj": a.oom_score_adj,
        "OomKillDisable": a.oom_kill_disable,
        "MemorySwappiness": a.memory_swappiness,
        "CgroupParent": a.cgroup_parent,
        "BlkioWeight": a.blkio_weight,
        "BlkioWeightDevice": parse_weight_devices(a.blkio_weight_device),
        "BlkioDeviceReadBps": parse_throttle_devices("--device-read-bps", a.device_read_bps, True),
        "BlkioDeviceWriteBps": parse_throttle_devices("--device-write-bps", a.device_write_bps, True),
        "BlkioDeviceReadIOps": parse_throttle_devices("--device-read-iops", a.device_read_iops, False),
        "BlkioDeviceWriteIOps": parse_throttle_devices("--device-write-iops", a.device_write_iops, False),
    }
    if a.cgroupns:
        host["CgroupnsMode"] = a.cgroupns
    if a.sysctl:
        host["Sysctls"] = parse_sysctls(a.sysctl)
    # Only what was asked for (the defaults are the daemon's): the body stays small.
    defaults = {"OomScoreAdj": 0, "OomKillDisable": False, "MemorySwappiness": -1, "CgroupParent": "", "BlkioWeight": 0}
    return {k: v for k, v in host.items() if v != defaults.get(k, [])}


def build_create_body(a: argparse.Namespace, cmd: list[str]) -> dict[str, Any]:
    """Namespace from RUN_ARGS (+ the trailing command line) -> POST /containers/create body."""
    attached = not a.detach
    if a.rm and a.restart not in ("", "no"):
        raise OptError("Conflicting options: --restart and --rm")
    exposed, bindings = parse_publish(a.publish)
    for e in a.expose:
        proto = "tcp"
        if "/" in e:
            e, proto = e.split("/", 1)
        for p in _port_range(e, e):
            exposed.setdefault(f"{p}/{proto}", {})
    binds, volumes = parse_volumes(a.volume)
    memory = size_flag("-m, --memory", a.memory)
    memory_swap = size_flag("--memory-swap", a.memory_swap, allow_minus_one=True)
    if memory_swap and memory_swap != -1 and memory and memory_swap < memory:
        raise OptError("Minimum memoryswap limit should be larger than memory limit, "
                       "see usage")
    entrypoint: list[str] | None = None
    if a.entrypoint is not None:
        entrypoint = [a.entrypoint] if a.entrypoint != "" else [""]
    hostname, domainname = a.hostname, a.domainname
    if hostname and "." in hostname and not domainname:
        hostname, domainname = hostname.split(".", 1)

    config: dict[str, Any] = {
        "Hostname": hostname,
        "Domainname": domainname,
        "User": a.user,
        "AttachStdin": attached and a.interactive,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": attached and a.interactive,
        "Env": parse_env(a.env, a.env_file),
        "Cmd": list(cmd) if cmd else None,
        "Image": a.image,
        "Volumes": volumes,
        "WorkingDir": a.workdir,
        "Entrypoint": entrypoint,
        "Labels": parse_kv_list(read_label_files(a.label_file) + a.label),
    }
    if a.mac_address:
        config["MacAddress"] = a.mac_address
    if exposed:
        config["ExposedPorts"] = exposed
    if a.stop_signal is not None:
        config["StopSignal"] = a.stop_signal
    if a.stop_timeout is not None:
        config["StopTimeout"] = a.stop_timeout
    healthcheck = parse_healthcheck(a)
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck

    host: dict[str, Any] = {
        "Binds": binds,
        "NetworkMode": a.network,
        "PortBindings": bindings,
        "RestartPolicy": parse_restart(a.restart),
        "AutoRemove": a.rm,
        "CapAdd": a.cap_add,
        "CapDrop": a.cap_drop,
        "Privileged": a.privileged,
        "ReadonlyRootfs": a.read_only,
        "PublishAllPorts": a.publish_all,
        "LogConfig": {"Type": a.log_driver, "Config": parse_kv_list(a.log_opt)},
        "Memory": memory,
        "MemorySwap": memory_swap,
        "MemoryReservation": size_flag("--memory-reservation", a.memory_reservation),
        "NanoCpus": parse_cpus(a.cpus),
        "CpuShares": a.cpu_shares,
        "CpuPeriod": a.cpu_period,
        "CpuQuota": a.cpu_quota,
        "CpusetCpus": a.cpuset_cpus,
    }
    if a.pids_limit is not None:
        host["PidsLimit"] = a.pids_limit
    if a.tmpfs:
        host["Tmpfs"] = parse_tmpfs(a.tmpfs)
    if a.volumes_from:
        host["VolumesFrom"] = a.volumes_from
    if a.add_host:
        host["ExtraHosts"] = a.add_host
    if a.dns:
        host["Dns"] = a.dns
    if a.dns_search:
        host["DnsSearch"] = a.dns_search
    if a.dns_option:
        host["DnsOptions"] = a.dns_option
    if a.group_add:
        host["GroupAdd"] = a.group_add
    if a.security_opt:
        host["SecurityOpt"] = a.security_opt
    if a.shm_size is not None:
        host["ShmSize"] = size_flag("--shm-size", a.shm_size)
    for flag, key in ((a.pid, "PidMode"), (a.ipc, "IpcMode"), (a.uts, "UTSMode")):
        if flag is not None:
            host[key] = flag
    if a.ulimit:
        host["Ulimits"] = parse_ulimits(a.ulimit)
    if a.init:
        host["Init"] = True
    if a.device:
        host["Devices"] = [parse_device(d) for d in a.device]
    if a.device_cgroup_rule:
        host["DeviceCgroupRules"] = a.device_cgroup_rule
    if a.mount:
        host["Mounts"] = [parse_mount(m) for m in a.mount]
    if a.link:
        host["Links"] = a.link
    if a.cpuset_mems:
        host["CpusetMems"] = a.cpuset_mems
    if a.kernel_memory:
        host["KernelMemory"] = size_flag("--kernel-memory", a.kernel_memory)
    if a.storage_opt:
        host["StorageOpt"] = parse_kv_list(a.storage_opt)
    for value, key in ((a.runtime, "Runtime"), (a.isolation, "Isolation"), (a.userns, "UsernsMode"),
                       (a.volume_driver, "VolumeDriver")):
        if value:
            host[key] = value
    host.update(kernel_knobs(a))
    endpoints = {}
    if a.network_alias or a.ip or a.ip6:
        ipam = {k: v for k, v in (("IPv4Address", a.ip), ("IPv6Address", a.ip6)) if v}
        endpoints[a.network] = {"Aliases": a.network_alias or None, "IPAMConfig": ipam or None}
    return {**config, "HostConfig": host, "NetworkingConfig": {"EndpointsConfig": endpoints}}
