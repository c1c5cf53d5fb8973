"""Docker's container JSON ↔ the engine's typed container spec (engine.containers.spec): the
only place that reads or writes Docker's Config, HostConfig and exec-config shapes.

Reading checks the shape (a 400 with dockerd's wording when a field has the wrong type) and
keeps what the engine does not act on in HostConfig.other, as given; dockerd's rules on the
values (ranges, conflicts, this host's support) are the engine's (engine.containers.config).
Writing gives inspect what dockerd shows: Go's zero values for fields never given, and
HostConfig.other back as it came.
"""

from __future__ import annotations

import shlex

from engine import errors
from engine.api._gotypes import go_keys
from engine.containers.spec import (
    Bind, ContainerConfig, DeviceLimit, DeviceMapping, ExecConfig, HealthConfig, HostConfig, LogConfig, Mount,
    PortBinding, ResourceLimits, RestartPolicy, Ulimit, VolumeDriverConfig)

# What `docker inspect` shows for HostConfig fields the client left out (dockerd 20.10's), in
# dockerd's order.
HOST_CONFIG_DEFAULTS = {
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

# ResourceLimits' per-device lists: field → (Docker's name, the value's key in each entry)
_BLKIO = {
    "blkio_weight_device": ("BlkioWeightDevice", "Weight"),
    "blkio_read_bps": ("BlkioDeviceReadBps", "Rate"),
    "blkio_write_bps": ("BlkioDeviceWriteBps", "Rate"),
    "blkio_read_iops": ("BlkioDeviceReadIOps", "Rate"),
    "blkio_write_iops": ("BlkioDeviceWriteIOps", "Rate"),
}
_RESOURCE_INTS = (("memory", "Memory"), ("memory_swap", "MemorySwap"), ("memory_reservation", "MemoryReservation"),
                  ("nano_cpus", "NanoCpus"), ("cpu_shares", "CpuShares"), ("cpu_quota", "CpuQuota"),
                  ("cpu_period", "CpuPeriod"), ("blkio_weight", "BlkioWeight"), ("kernel_memory", "KernelMemory"),
                  ("cpu_realtime_period", "CpuRealtimePeriod"), ("cpu_realtime_runtime", "CpuRealtimeRuntime"))


# --- shape checks ------------------------------------------------------------------------
def _strings(value, field: str) -> tuple[str, ...] | None:
    """A list of strings (a lone string counts as one); None when not given."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidParameter(f"{field} must be a list of strings")
    return tuple(value)


def _int(value, field: str) -> int:
    value = value or 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.InvalidParameter(f"invalid value for {field}: {value!r}")
    return value


def _str(value, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.InvalidParameter(f"invalid value for {field}: {value!r}")
    return value


def _object(value, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidParameter(f"{field} must be a JSON object")
    return value


def _keys(value, field: str) -> tuple[str, ...] | None:
    """ExposedPorts / Volumes: Docker's {"key": {}} sets (a list is taken too)."""
    if not value:
        return None
    if isinstance(value, dict):
        return tuple(value)
    return _strings(value, field)


# --- Docker's JSON → spec ----------------------------------------------------------------
def create_request(body) -> tuple[ContainerConfig, HostConfig]:
    """A create body → (the requested ContainerConfig, HostConfig). The image's defaults are
    merged in by the engine (ContainerManager.create)."""
    if not isinstance(body, dict):
        raise errors.InvalidParameter("container config must be a JSON object")
    if not body.get("Image"):
        raise errors.InvalidParameter("Config cannot be empty in order to create a container")
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise errors.InvalidParameter("HostConfig must be a JSON object")
    return container_config(body), host_config(host)


def container_config(body: dict) -> ContainerConfig:
    """Docker's Config (a create body's top level, or a record's Config) → ContainerConfig."""
    cmd = body.get("Cmd")
    cmd = tuple(shlex.split(cmd)) if isinstance(cmd, str) else _strings(cmd, "Cmd")
    entrypoint = body.get("Entrypoint")
    entrypoint = (entrypoint,) if isinstance(entrypoint, str) else _strings(entrypoint, "Entrypoint")
    stop_timeout = body.get("StopTimeout")
    if stop_timeout is not None and (not isinstance(stop_timeout, int) or isinstance(stop_timeout, bool)):
        raise errors.InvalidParameter("StopTimeout must be an integer")
    labels = _object(body.get("Labels"), "Labels")
    stop_signal = body.get("StopSignal")
    return ContainerConfig(
        image=str(body.get("Image") or ""),
        hostname=_str(body.get("Hostname"), "Hostname"),
        domainname=_str(body.get("Domainname"), "Domainname"),
        user=_str(body.get("User"), "User"),
        attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")),
        exposed_ports=_keys(body.get("ExposedPorts"), "ExposedPorts"),
        tty=bool(body.get("Tty")),
        open_stdin=bool(body.get("OpenStdin")),
        stdin_once=bool(body.get("StdinOnce")),
        env=_strings(body.get("Env"), "Env") or (),
        cmd=cmd or None,
        volumes=_keys(body.get("Volumes"), "Volumes"),
        working_dir=_str(body.get("WorkingDir"), "WorkingDir"),
        entrypoint=entrypoint,
        labels={str(k): str(v) for k, v in labels.items()},
        mac_address=_str(body.get("MacAddress"), "MacAddress"),
        healthcheck=healthcheck(body.get("Healthcheck")),
        shell=_strings(body.get("Shell"), "Shell") or None,
        stop_signal=str(stop_signal) if stop_signal not in (None, "") else "",
        stop_timeout=stop_timeout,
    )


def healthcheck(value) -> HealthConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.InvalidParameter("Healthcheck must be a JSON object")
    test = value.get("Test")
    if test is not None and (not isinstance(test, list) or not all(isinstance(t, str) for t in test)):
        raise errors.InvalidParameter("Healthcheck.Test must be a list of strings")
    durations = {}
    for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
        number = value.get(key) or 0
        if not isinstance(number, int) or isinstance(number, bool):
            raise errors.InvalidParameter(f"invalid value for Healthcheck.{key}: {number!r}")
        durations[key] = number
    return HealthConfig(test=tuple(test or ()), interval_ns=durations["Interval"], timeout_ns=durations["Timeout"],
                        start_period_ns=durations["StartPeriod"], retries=durations["Retries"])


def restart_policy(value) -> RestartPolicy:
    value = value or {}
    if not isinstance(value, dict):
        raise errors.InvalidParameter("invalid restart policy: a JSON object is expected")
    retries = value.get("MaximumRetryCount") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise errors.InvalidParameter("invalid restart policy: MaximumRetryCount must be an integer")
    return RestartPolicy(str(value.get("Name") or ""), retries)


def _mount(value) -> Mount:
    if not isinstance(value, dict) or not value.get("Target"):
        raise errors.InvalidParameter("invalid mount config: Target must not be empty")
    bind = value.get("BindOptions")
    volume = value.get("VolumeOptions")
    tmpfs = value.get("TmpfsOptions")
    driver = volume.get("DriverConfig") if isinstance(volume, dict) else None
    return Mount(
        type=_str(value.get("Type"), "Mount.Type") or "bind",
        source=_str(value.get("Source"), "Mount.Source"),
        target=_str(value.get("Target"), "Mount.Target"),
        read_only=bool(value["ReadOnly"]) if value.get("ReadOnly") is not None else None,
        consistency=_str(value.get("Consistency"), "Mount.Consistency"),
        bind_options=isinstance(bind, dict),
        propagation=_str(bind.get("Propagation"), "Mount.BindOptions.Propagation") if isinstance(bind, dict) else "",
        non_recursive=bool(bind.get("NonRecursive")) if isinstance(bind, dict) else False,
        volume_options=isinstance(volume, dict),
        no_copy=bool(volume.get("NoCopy")) if isinstance(volume, dict) else False,
        volume_labels=dict(volume.get("Labels")) if isinstance(volume, dict) and volume.get("Labels") else None,
        volume_driver=VolumeDriverConfig(_str(driver.get("Name"), "Mount.VolumeOptions.DriverConfig.Name"),
                                         dict(driver["Options"]) if driver.get("Options") else None)
        if isinstance(driver, dict) else None,
        tmpfs_options=isinstance(tmpfs, dict),
        tmpfs_size=_int(tmpfs.get("SizeBytes"), "Mount.TmpfsOptions.SizeBytes") if isinstance(tmpfs, dict) else 0,
        tmpfs_mode=_int(tmpfs.get("Mode"), "Mount.TmpfsOptions.Mode") if isinstance(tmpfs, dict) else 0,
    )


def _port_bindings(value) -> dict[str, tuple[PortBinding, ...] | None]:
    out = {}
    for key, entries in _object(value, "PortBindings").items():
        if entries is None:
            out[key] = None
            continue
        if not isinstance(entries, list):
            raise errors.InvalidParameter(f"invalid port bindings for {key}: a list is expected")
        out[key] = tuple(
            PortBinding(str((e or {}).get("HostIp") or ""), str((e or {}).get("HostPort") or ""))
            for e in entries)
    return out


def _device(mapping) -> DeviceMapping:
    if not isinstance(mapping, dict) or not isinstance(mapping.get("PathOnHost"), str) or not mapping["PathOnHost"]:
        raise errors.InvalidParameter(f"invalid device mapping {mapping!r}: PathOnHost is required")
    mode = mapping.get("CgroupPermissions") or "rwm"
    if not isinstance(mode, str):
        raise errors.InvalidParameter(f"invalid device mode: {mode}")
    return DeviceMapping(mapping["PathOnHost"], _str(mapping.get("PathInContainer"), "PathInContainer"), mode)


def _ulimit(value) -> Ulimit:
    try:
        return Ulimit(str(value.get("Name", "")), int(value.get("Soft", 0)), int(value.get("Hard", 0)))
    except (AttributeError, TypeError, ValueError):
        raise errors.InvalidParameter(f"invalid ulimit: {value!r}") from None


def _device_limits(host: dict, field: str, key: str) -> tuple[DeviceLimit, ...] | None:
    entries = host.get(field)
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise errors.InvalidParameter(f"invalid {field}: a list of devices is expected")
    out = []
    for entry in entries:
        value = entry.get(key) if isinstance(entry, dict) else None
        if (not isinstance(entry, dict) or not isinstance(entry.get("Path"), str) or not entry["Path"]
                or not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise errors.InvalidParameter(f"invalid {field} entry: {entry!r}")
        out.append(DeviceLimit(entry["Path"], value))
    return tuple(out)


def resource_limits(host: dict) -> ResourceLimits:
    ints = {attr: _int(host.get(key), key) for attr, key in _RESOURCE_INTS}
    pids = host.get("PidsLimit")
    if pids is not None and (not isinstance(pids, int) or isinstance(pids, bool)):
        raise errors.InvalidParameter("invalid PidsLimit")
    if pids is not None and pids <= 0:
        pids = None  # dockerd: 0, -1 and any other negative value mean no limit (shown as null)
    swappiness = host.get("MemorySwappiness")
    if swappiness is not None and (not isinstance(swappiness, int) or isinstance(swappiness, bool)):
        raise errors.InvalidParameter(f"invalid value for MemorySwappiness: {swappiness!r}")
    if swappiness == -1:
        swappiness = None  # the CLI's "not set": dockerd keeps null
    oom_kill_disable = host.get("OomKillDisable")
    if oom_kill_disable is not None and not isinstance(oom_kill_disable, bool):
        raise errors.InvalidParameter("invalid value for OomKillDisable: a boolean is expected")
    return ResourceLimits(
        **ints, memory_swappiness=swappiness, oom_kill_disable=bool(oom_kill_disable), pids_limit=pids,
        cpuset_cpus=_str(host.get("CpusetCpus"), "CpusetCpus"), cpuset_mems=_str(host.get("CpusetMems"), "CpusetMems"),
        **{attr: limits for attr, (field, key) in _BLKIO.items()
           if (limits := _device_limits(host, field, key)) is not None},
    )


# Docker HostConfig keys the typed HostConfig holds (everything else goes to `other`).
_TYPED_HOST_KEYS = frozenset({
    "Binds", "Mounts", "VolumesFrom", "StorageOpt", "Tmpfs", "VolumeDriver", "NetworkMode", "PortBindings", "PublishAllPorts", "Links",
    "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "RestartPolicy", "AutoRemove", "LogConfig", "Privileged",
    "CapAdd", "CapDrop", "SecurityOpt", "GroupAdd", "ReadonlyRootfs", "MaskedPaths", "ReadonlyPaths", "Init",
    "OomScoreAdj", "ShmSize", "Ulimits", "Sysctls", "Devices", "DeviceCgroupRules", "CgroupParent",
    "CgroupnsMode", "PidMode", "IpcMode", "UTSMode", "MemorySwappiness", "OomKillDisable", "PidsLimit",
    "CpusetCpus", "CpusetMems", *(key for _, key in _RESOURCE_INTS), *(field for field, _ in _BLKIO.values()),
})


def host_config(body: dict) -> HostConfig:
    """Docker's HostConfig → HostConfig. A field given as null counts as not given; keys are
    matched to fields as Go matches them (go_keys)."""
    host = {k: v for k, v in go_keys(body, _TYPED_HOST_KEYS).items() if v is not None}
    mode = host.get("NetworkMode", "default")
    if not isinstance(mode, str):
        raise errors.InvalidParameter(f"invalid NetworkMode: {mode!r}")
    for field in ("PidMode", "IpcMode", "UTSMode"):
        if field in host and not isinstance(host[field], str):
            raise errors.InvalidParameter(f"invalid {field}: {host[field]}")
    parent = host.get("CgroupParent", "")
    if not isinstance(parent, str):
        raise errors.InvalidParameter("invalid CgroupParent: a string is expected")
    log_config = _object(host.get("LogConfig"), "LogConfig")
    sysctls = host.get("Sysctls")
    if sysctls is not None and (not isinstance(sysctls, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in sysctls.items())):
        raise errors.InvalidParameter("Sysctls must be a map of strings to strings")
    devices = host.get("Devices") or []
    if not isinstance(devices, list):
        raise errors.InvalidParameter("invalid Devices: a list of device mappings is expected")
    rules = host.get("DeviceCgroupRules")
    if rules is not None and not isinstance(rules, list):
        raise errors.InvalidParameter("invalid DeviceCgroupRules: a list of rules is expected")
    mounts = host.get("Mounts")
    if mounts is not None and not isinstance(mounts, list):
        raise errors.InvalidParameter("invalid mount config: Mounts must be a list")
    tmpfs = host.get("Tmpfs")
    binds = _strings(host.get("Binds"), "Binds")
    ulimits = host.get("Ulimits")
    return HostConfig(
        resources=resource_limits(host),
        binds=tuple(Bind.parse(b) for b in binds) if binds is not None else None,
        mounts=tuple(_mount(m) for m in mounts) if mounts is not None else None,
        volumes_from=_strings(host.get("VolumesFrom"), "VolumesFrom"),
        storage_opt={str(k): str(v) for k, v in _object(host["StorageOpt"], "StorageOpt").items()}
        if host.get("StorageOpt") is not None else None,
        tmpfs={str(k): str(v or "") for k, v in _object(tmpfs, "Tmpfs").items()} if tmpfs is not None else None,
        volume_driver=_str(host.get("VolumeDriver"), "VolumeDriver"),
        network_mode=mode or "default",
        port_bindings=_port_bindings(host.get("PortBindings")),
        publish_all_ports=bool(host.get("PublishAllPorts")),
        links=_strings(host.get("Links"), "Links"),
        dns=_strings(host.get("Dns"), "Dns") or (),
        dns_options=_strings(host.get("DnsOptions"), "DnsOptions") or (),
        dns_search=_strings(host.get("DnsSearch"), "DnsSearch") or (),
        extra_hosts=_strings(host.get("ExtraHosts"), "ExtraHosts"),
        restart_policy=restart_policy(host.get("RestartPolicy")).normalized(),
        auto_remove=bool(host.get("AutoRemove")),
        # An empty Type (or ShmSize, CgroupnsMode, IpcMode): the daemon's default
        # (engine.containers.config.with_daemon_defaults)
        log_config=LogConfig(_str(log_config.get("Type"), "LogConfig.Type"),
                             {str(k): str(v) for k, v in _object(log_config.get("Config"), "LogConfig.Config").items()}),
        privileged=bool(host.get("Privileged")),
        cap_add=_strings(host.get("CapAdd"), "CapAdd"),
        cap_drop=_strings(host.get("CapDrop"), "CapDrop"),
        security_opt=_strings(host.get("SecurityOpt"), "SecurityOpt"),
        group_add=_strings(host.get("GroupAdd"), "GroupAdd"),
        readonly_rootfs=bool(host.get("ReadonlyRootfs")),
        masked_paths=_strings(host.get("MaskedPaths"), "MaskedPaths"),
        readonly_paths=_strings(host.get("ReadonlyPaths"), "ReadonlyPaths"),
        init=bool(host["Init"]) if "Init" in host else None,
        oom_score_adj=_int(host.get("OomScoreAdj"), "OomScoreAdj"),
        shm_size=_int(host.get("ShmSize"), "ShmSize"),
        ulimits=tuple(_ulimit(u) for u in ulimits) if isinstance(ulimits, list) else None,
        sysctls=dict(sysctls) if sysctls is not None else None,
        devices=tuple(_device(d) for d in devices),
        device_cgroup_rules=_strings(rules, "DeviceCgroupRules"),
        cgroup_parent=parent,
        cgroupns_mode=_str(host.get("CgroupnsMode"), "CgroupnsMode"),  # "": the daemon's default
        pid_mode=host.get("PidMode", ""),
        ipc_mode=_str(host.get("IpcMode"), "IpcMode"),  # "": the daemon's default
        uts_mode=host.get("UTSMode", ""),
        other={k: v for k, v in host.items() if k not in _TYPED_HOST_KEYS},
    )


def legacy_record(config: dict, host: dict) -> tuple[ContainerConfig, HostConfig]:
    """engine.containers.record.LegacyReader: a record written before the typed spec kept
    Docker's Config and HostConfig (as normalized at create), read with the defaults of then
    for what it left out (a daemon without options: json-file, private IPC and cgroupns)."""
    log_config = host.get("LogConfig") if isinstance(host.get("LogConfig"), dict) else {}
    host = {**host, "ShmSize": host.get("ShmSize", HOST_CONFIG_DEFAULTS["ShmSize"]),
            "IpcMode": host.get("IpcMode") or "private", "CgroupnsMode": host.get("CgroupnsMode") or "private",
            "LogConfig": {**log_config, "Type": log_config.get("Type") or "json-file"}}
    return container_config(config), host_config(host)


def exec_config(body) -> ExecConfig:
    """An exec-create body → ExecConfig (a missing command is refused by the engine, after
    its checks of the container's state, as dockerd orders them)."""
    if not isinstance(body, dict):
        raise errors.InvalidParameter("exec config must be a JSON object")
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
        cmd = []
    attach_stdout, attach_stderr = body.get("AttachStdout"), body.get("AttachStderr")
    return ExecConfig(
        cmd=tuple(cmd), tty=bool(body.get("Tty")), privileged=bool(body.get("Privileged")),
        user=str(body.get("User") or ""), working_dir=str(body.get("WorkingDir") or ""),
        env=_strings(body.get("Env"), "Env") or (), attach_stdin=bool(body.get("AttachStdin")),
        attach_stdout=None if attach_stdout is None else bool(attach_stdout),
        attach_stderr=None if attach_stderr is None else bool(attach_stderr),
        detach_keys=detach_keys(body) or "",
    )


def detach_keys(body: dict) -> str | None:
    """DetachKeys from an exec config (docker-py sends "detachKeys": go_keys)."""
    value = go_keys(body, _DETACH_KEYS).get("DetachKeys")
    return str(value) if value else None


_DETACH_KEYS = frozenset({"DetachKeys"})


# --- spec → Docker's JSON ----------------------------------------------------------------
def _list(values) -> list | None:
    return list(values) if values is not None else None


def healthcheck_shape(health: HealthConfig) -> dict:
    """Go's omitempty fields, as dockerd shows them."""
    out: dict = {}
    if health.test:
        out["Test"] = list(health.test)
    for key, value in (("Interval", health.interval_ns), ("Timeout", health.timeout_ns),
                       ("StartPeriod", health.start_period_ns), ("Retries", health.retries)):
        if value:
            out[key] = value
    return out


def config_shape(config: ContainerConfig) -> dict:
    """Config, as inspect shows it (and commit writes into an image's container_config)."""
    out = {
        "Hostname": config.hostname,
        "Domainname": config.domainname,
        "User": config.user,
        "AttachStdin": config.attach_stdin,
        "AttachStdout": config.attach_stdout,
        "AttachStderr": config.attach_stderr,
        "ExposedPorts": {p: {} for p in config.exposed_ports or ()},
        "Tty": config.tty,
        "OpenStdin": config.open_stdin,
        "StdinOnce": config.stdin_once,
        "Env": list(config.env),
        "Cmd": _list(config.cmd),
        "Image": config.image,
        "Volumes": {v: {} for v in config.volumes} if config.volumes else None,
        "WorkingDir": config.working_dir,
        "Entrypoint": _list(config.entrypoint),
        "OnBuild": None,
        "Labels": dict(config.labels),
    }
    if not config.exposed_ports:
        del out["ExposedPorts"]  # Go's omitempty, as HostConfig's Mounts
    if config.mac_address:
        out["MacAddress"] = config.mac_address
    if config.healthcheck is not None:
        out["Healthcheck"] = healthcheck_shape(config.healthcheck)
    if config.shell:
        out["Shell"] = list(config.shell)
    if config.stop_signal:
        out["StopSignal"] = config.stop_signal
    if config.stop_timeout is not None:
        out["StopTimeout"] = config.stop_timeout
    return out


def _mount_shape(mount: Mount) -> dict:
    """Go's mount.Mount: omitempty fields."""
    out: dict = {"Type": mount.type}
    if mount.source:
        out["Source"] = mount.source
    if mount.target:
        out["Target"] = mount.target
    if mount.read_only is not None:
        out["ReadOnly"] = mount.read_only
    if mount.consistency:
        out["Consistency"] = mount.consistency
    if mount.bind_options:
        bind: dict = {}
        if mount.propagation:
            bind["Propagation"] = mount.propagation
        if mount.non_recursive:
            bind["NonRecursive"] = True
        out["BindOptions"] = bind
    if mount.volume_options:
        volume: dict = {}
        if mount.no_copy:
            volume["NoCopy"] = True
        if mount.volume_labels:
            volume["Labels"] = dict(mount.volume_labels)
        if mount.volume_driver is not None:
            driver: dict = {}
            if mount.volume_driver.name:
                driver["Name"] = mount.volume_driver.name
            if mount.volume_driver.options:
                driver["Options"] = dict(mount.volume_driver.options)
            volume["DriverConfig"] = driver
        out["VolumeOptions"] = volume
    if mount.tmpfs_options:
        tmpfs: dict = {}
        if mount.tmpfs_size:
            tmpfs["SizeBytes"] = mount.tmpfs_size
        if mount.tmpfs_mode:
            tmpfs["Mode"] = mount.tmpfs_mode
        out["TmpfsOptions"] = tmpfs
    return out


def host_config_shape(host: HostConfig) -> dict:
    """HostConfig, as inspect shows it: dockerd's fields in its order (their defaults for the
    ones never given), then the other fields the client sent."""
    res = host.resources
    typed = {
        "Binds": [b.text for b in host.binds] if host.binds is not None else None,
        "LogConfig": {"Type": host.log_config.type, "Config": dict(host.log_config.options)},
        "NetworkMode": host.network_mode,
        "PortBindings": {key: [{"HostIp": e.host_ip, "HostPort": e.host_port} for e in entries]
                         if entries is not None else None for key, entries in host.port_bindings.items()},
        "RestartPolicy": {"Name": host.restart_policy.name or "no",
                          "MaximumRetryCount": host.restart_policy.maximum_retry_count},
        "AutoRemove": host.auto_remove,
        "VolumeDriver": host.volume_driver,
        "CapAdd": _list(host.cap_add),
        "CapDrop": _list(host.cap_drop),
        "CgroupnsMode": host.cgroupns_mode,
        "Dns": list(host.dns),
        "DnsOptions": list(host.dns_options),
        "DnsSearch": list(host.dns_search),
        "ExtraHosts": _list(host.extra_hosts),
        "GroupAdd": _list(host.group_add),
        "IpcMode": host.ipc_mode,
        "Links": _list(host.links),
        "OomScoreAdj": host.oom_score_adj,
        "PidMode": host.pid_mode,
        "Privileged": host.privileged,
        "PublishAllPorts": host.publish_all_ports,
        "ReadonlyRootfs": host.readonly_rootfs,
        "SecurityOpt": _list(host.security_opt),
        "UTSMode": host.uts_mode,
        "ShmSize": host.shm_size,
        "CgroupParent": host.cgroup_parent,
        "CpusetCpus": res.cpuset_cpus,
        "CpusetMems": res.cpuset_mems,
        "Devices": [{"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
                     "CgroupPermissions": d.cgroup_permissions} for d in host.devices],
        "DeviceCgroupRules": _list(host.device_cgroup_rules),
        "MemorySwappiness": res.memory_swappiness,
        "OomKillDisable": res.oom_kill_disable,
        "PidsLimit": res.pids_limit,
        "Ulimits": [{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in host.ulimits]
        if host.ulimits is not None else None,
        "Mounts": [_mount_shape(m) for m in host.mounts] if host.mounts is not None else None,
        "VolumesFrom": _list(host.volumes_from),
        "MaskedPaths": _list(host.masked_paths),
        "ReadonlyPaths": _list(host.readonly_paths),
        "Tmpfs": dict(host.tmpfs) if host.tmpfs is not None else None,
        "Init": host.init,
    }
    typed.update((key, getattr(res, attr)) for attr, key in _RESOURCE_INTS)
    for attr, (field, key) in _BLKIO.items():
        entries = getattr(res, attr)
        typed[field] = [{"Path": e.path, key: e.value} for e in entries] if entries is not None else None
    out = {key: typed[key] if key in typed else host.other.get(key, default)
           for key, default in HOST_CONFIG_DEFAULTS.items()}
    if host.sysctls is not None:
        out["Sysctls"] = dict(host.sysctls)
    out.update((key, value) for key, value in host.other.items() if key not in out)
    for key in OMITTED_WHEN_EMPTY:  # Go's omitempty
        if not out.get(key):
            out.pop(key, None)
    if out.get("Init") is None:  # a pointer: a false one shows
        out.pop("Init", None)
    return out


#: HostConfig fields dockerd leaves out when empty.
OMITTED_WHEN_EMPTY = ("Mounts", "Tmpfs", "StorageOpt", "Sysctls")


def exec_shape(instance) -> dict:
    """GET /exec/{id}/json of an engine.containers.exec.ExecInstance."""
    config = instance.config
    return {
        "ID": instance.id,
        "Running": instance.running,
        "ExitCode": instance.exit_code,
        "ProcessConfig": {
            "tty": config.tty,
            "entrypoint": config.cmd[0] if config.cmd else "",
            "arguments": list(config.cmd[1:]),
            "privileged": config.privileged,
            "user": config.user,
        },
        "OpenStdin": config.attach_stdin,
        "OpenStderr": bool(config.attach_stderr),
        "OpenStdout": bool(config.attach_stdout),
        "CanRemove": False,
        "ContainerID": instance.container_id,
        "DetachKeys": config.detach_keys,
        "Pid": instance.pid,
    }
