"""A service's container as the Engine API's create body (POST /containers/create).

Compose is an API client: this is where a service's normalized config becomes Docker's JSON.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from . import labels as L
from .errors import ConfigError
from .model import Project, Service
from .units import parse_bytes, parse_duration_ns

_RESTART = {"no": "", "always": "always", "unless-stopped": "unless-stopped",
            "on-failure": "on-failure"}


def _command(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _healthcheck(hc: dict | None, where: str) -> dict | None:
    if not hc:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {}
    test = hc.get("test")
    if isinstance(test, str):
        out["Test"] = ["CMD-SHELL", test]
    elif test:
        out["Test"] = [str(t) for t in test]
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"),
                     ("start_period", "StartPeriod"), ("start_interval", "StartInterval")):
        if hc.get(key) is not None:
            out[api] = parse_duration_ns(hc[key], f"{where}.healthcheck.{key}")
    if hc.get("retries") is not None:
        out["Retries"] = int(hc["retries"])
    return out


def _restart(policy: str | None) -> dict:
    if not policy:
        return {"Name": ""}
    name, _, count = policy.partition(":")
    if name not in _RESTART:
        raise ConfigError(f"invalid restart policy {policy!r}")
    return {"Name": _RESTART[name], "MaximumRetryCount": int(count or 0)}


def _mounts(project: Project, svc: Service) -> tuple[list[str], dict[str, str], list[dict]]:
    """(Binds, Tmpfs, Mounts) for the service's volumes, secrets and configs."""
    binds: list[str] = []
    tmpfs: dict[str, str] = {}
    mounts: list[dict] = []
    for vol in svc.config["volumes"]:
        kind, target, ro = vol["type"], vol["target"], vol.get("read_only")
        if kind == "tmpfs":
            size = (vol.get("tmpfs") or {}).get("size")
            tmpfs[target] = f"size={parse_bytes(size, 'tmpfs.size')}" if size else ""
            continue
        source = vol.get("source") or ""
        if kind == "volume":
            if not source:  # anonymous volume
                mounts.append({"Type": "volume", "Target": target, "ReadOnly": bool(ro)})
                continue
            source = project.volume_name(source)
        mode = ["ro" if ro else "rw"]
        if (vol.get("volume") or {}).get("nocopy"):
            mode.append("nocopy")
        binds.append(f"{source}:{target}:{','.join(mode)}")
    for item in svc.config.get("tmpfs") or []:
        path, _, opts = str(item).partition(":")
        tmpfs[path] = opts
    secrets = svc.config.get("secrets") or []
    if secrets and all("file" in project.secrets[_source(i)] for i in secrets):
        # /run/secrets is a tmpfs: secret files never land in the container's layer (those
        # from `environment:` are copied in before start, as Compose does: no tmpfs then).
        tmpfs.setdefault("/run/secrets", "mode=755")
    for kind, items, base in (("secrets", secrets, "/run/secrets"),
                              ("configs", svc.config.get("configs") or [], "")):
        for item in items:
            item = item if isinstance(item, dict) else {"source": item}
            spec = getattr(project, kind)[item["source"]]
            target = item.get("target") or item["source"]
            if not target.startswith("/"):
                target = f"{base}/{target}"
            if "file" in spec:
                binds.append(f"{spec['file']}:{target}:ro")
            elif "content" not in spec:
                raise ConfigError(f"services.{svc.name}.{kind}: {item['source']} has no file "
                                  "or environment (external ones need a swarm)")
    return binds, tmpfs, mounts


def _source(item: Any) -> str:
    return item["source"] if isinstance(item, dict) else item


def _ports(svc: Service) -> tuple[dict, dict]:
    exposed: dict[str, dict] = {}
    bindings: dict[str, list] = {}
    for p in svc.config["ports"]:
        key = f"{p['target']}/{p['protocol']}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": p["host_ip"],
                                             "HostPort": p["published"]})
    for e in svc.config.get("expose") or []:
        port, _, proto = str(e).partition("/")
        exposed[f"{port}/{proto or 'tcp'}"] = {}
    return exposed, bindings


def endpoint_config(project: Project, svc: Service, key: str, number: int | None) -> dict:
    """One network endpoint: the service name (and the container's) as DNS aliases."""
    spec = svc.networks.get(key) or {}
    aliases = [svc.name] + list(spec.get("aliases") or [])
    cfg: dict[str, Any] = {"Aliases": aliases}
    ipam = {}
    if spec.get("ipv4_address"):
        ipam["IPv4Address"] = spec["ipv4_address"]
    if spec.get("ipv6_address"):
        ipam["IPv6Address"] = spec["ipv6_address"]
    if ipam:
        cfg["IPAMConfig"] = ipam
    return cfg


def _sysctls(value) -> dict | None:
    """sysctls (normalized to a mapping): values as the API's strings ("1024", not 1024)."""
    if not value:
        return None
    return {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


#: blkio_config list key → (HostConfig field, entry key, value key in the API)
_BLKIO_DEVICES = {
    "weight_device": ("BlkioWeightDevice", "weight", "Weight"),
    "device_read_bps": ("BlkioDeviceReadBps", "rate", "Rate"),
    "device_write_bps": ("BlkioDeviceWriteBps", "rate", "Rate"),
    "device_read_iops": ("BlkioDeviceReadIOps", "rate", "Rate"),
    "device_write_iops": ("BlkioDeviceWriteIOps", "rate", "Rate"),
}


def _kernel_knobs(c: dict, where: str) -> dict:
    """oom_score_adj, cgroup_parent, cgroup, mem_swappiness, oom_kill_disable, blkio_config."""
    host: dict[str, Any] = {}
    if c.get("oom_score_adj") is not None:
        host["OomScoreAdj"] = int(c["oom_score_adj"])
    if c.get("cgroup_parent"):
        host["CgroupParent"] = c["cgroup_parent"]
    if c.get("cgroup"):
        host["CgroupnsMode"] = c["cgroup"]
    if c.get("mem_swappiness") is not None:
        host["MemorySwappiness"] = int(c["mem_swappiness"])
    if c.get("oom_kill_disable") is not None:
        host["OomKillDisable"] = bool(c["oom_kill_disable"])
    blkio = c.get("blkio_config") or {}
    if blkio.get("weight"):
        host["BlkioWeight"] = int(blkio["weight"])
    for key, (field, entry_key, api_key) in _BLKIO_DEVICES.items():
        entries = []
        for i, entry in enumerate(blkio.get(key) or []):
            value = entry.get(entry_key)
            if key.endswith("_bps"):  # "12mb" or bytes
                value = parse_bytes(value, f"{where}.blkio_config.{key}[{i}].rate")
            entries.append({"Path": entry.get("path"), api_key: int(value)})
        if entries:
            host[field] = entries
    return host


def service_sources(svc: Service) -> list[str]:
    """The services whose containers svc's container uses: network_mode service:X and
    volumes_from entries that name a service (not container:NAME)."""
    mode = svc.config.get("network_mode") or ""
    sources = [mode.split(":", 1)[1]] if mode.startswith("service:") else []
    return sources + [e.split(":", 1)[0] for e in svc.config.get("volumes_from") or []
                      if not e.startswith("container:")]


def _volumes_from(svc: Service, service_containers: Mapping[str, str]) -> list[str]:
    """volumes_from as the engine takes it: "service[:mode]" and "container:name[:mode]" become
    "container id or name[:mode]"."""
    out = []
    for entry in svc.config.get("volumes_from") or []:
        if entry.startswith("container:"):
            out.append(entry.split(":", 1)[1])
            continue
        source, sep, mode = entry.partition(":")
        out.append(_container_of(svc, f"volumes_from {source}", source, service_containers) + sep + mode)
    return out


def _container_of(svc: Service, what: str, source: str, service_containers: Mapping[str, str]) -> str:
    cid = service_containers.get(source)
    if not cid:
        raise ConfigError(f"services.{svc.name}.{what}: service {source!r} has no container")
    return cid


def create_body(project: Project, svc: Service, number: int, *, oneoff: bool = False,
                command: list[str] | None = None, image_id: str | None = None,
                service_containers: Mapping[str, str] | None = None) -> dict:
    """The POST /containers/create body for replica `number` (or a one-off container).
    `service_containers`: service -> the container id that network_mode service:X and
    volumes_from use (its first replica)."""
    c = svc.config
    where = f"services.{svc.name}"
    service_containers = service_containers or {}
    binds, tmpfs, mounts = _mounts(project, svc)
    exposed, port_bindings = _ports(svc)
    resources = ((c.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    host: dict[str, Any] = {
        "Binds": binds, "Tmpfs": tmpfs or None, "Mounts": mounts or None,
        "PortBindings": port_bindings, "RestartPolicy": _restart(c.get("restart")),
        "Init": c.get("init"), "Privileged": bool(c.get("privileged")),
        "ReadonlyRootfs": bool(c.get("read_only")),
        "CapAdd": c.get("cap_add"), "CapDrop": c.get("cap_drop"),
        "Dns": c.get("dns") or [], "DnsSearch": c.get("dns_search") or [],
        "DnsOptions": c.get("dns_opt") or [],
        "ExtraHosts": _extra_hosts(c.get("extra_hosts")),
        "SecurityOpt": c.get("security_opt"), "GroupAdd": c.get("group_add"),
        "Sysctls": _sysctls(c.get("sysctls")), "PidMode": c.get("pid") or "", "IpcMode": c.get("ipc"),
        "LogConfig": _logging(c.get("logging")),
        "VolumesFrom": _volumes_from(svc, service_containers) or None,
    }
    memory = resources.get("memory") or c.get("mem_limit")
    if memory:
        host["Memory"] = parse_bytes(memory, f"{where}.deploy.resources.limits.memory")
    cpus = resources.get("cpus") or c.get("cpus")
    if cpus:
        host["NanoCpus"] = int(float(cpus) * 1e9)
    pids = resources.get("pids") or c.get("pids_limit")
    if pids:
        host["PidsLimit"] = int(pids)
    if c.get("shm_size"):
        host["ShmSize"] = parse_bytes(c["shm_size"], f"{where}.shm_size")
    if c.get("ulimits"):
        host["Ulimits"] = [_ulimit(k, v) for k, v in c["ulimits"].items()]
    if c.get("devices"):
        host["Devices"] = [_device(d) for d in c["devices"]]
    if c.get("device_cgroup_rules"):
        host["DeviceCgroupRules"] = list(c["device_cgroup_rules"])
    host.update(_kernel_knobs(c, where))

    networking = None
    if c.get("network_mode"):
        mode = c["network_mode"]
        if mode.startswith("service:"):
            mode = "container:" + _container_of(svc, "network_mode", mode.split(":", 1)[1], service_containers)
        host["NetworkMode"] = mode
    else:
        first = next(iter(svc.networks))
        host["NetworkMode"] = project.network_name(first)
        networking = {"EndpointsConfig": {
            project.network_name(first): endpoint_config(project, svc, first, number)}}

    container_labels = dict(c.get("labels") or {})
    container_labels.update({
        L.PROJECT: project.name, L.SERVICE: svc.name, L.NUMBER: str(number),
        L.ONEOFF: "True" if oneoff else "False", L.CONFIG_HASH: svc.config_hash,
        L.VERSION: L.COMPOSE_VERSION, L.WORKING_DIR: project.working_dir,
        L.CONFIG_FILES: ",".join(project.config_files),
        L.DEPENDS_ON: ",".join(f"{d.service}:{d.condition}:false"
                               for d in svc.depends_on.values()),
    })
    if image_id:
        container_labels[L.IMAGE] = image_id
    body: dict[str, Any] = {
        "Image": project.image_name(svc),
        "Cmd": command if command is not None else _command(c.get("command")),
        "Entrypoint": _command(c.get("entrypoint")),
        "Env": [f"{k}={v}" for k, v in c["environment"].items()],
        "Labels": container_labels,
        "ExposedPorts": exposed or None,
        "Hostname": c.get("hostname") or "", "Domainname": c.get("domainname") or "",
        "User": str(c.get("user") or ""), "WorkingDir": c.get("working_dir") or "",
        "Tty": bool(c.get("tty")), "OpenStdin": bool(c.get("stdin_open")),
        "AttachStdout": True, "AttachStderr": True,
        "StopSignal": c.get("stop_signal"),
        "Healthcheck": _healthcheck(c.get("healthcheck"), where),
        "HostConfig": host,
    }
    if c.get("stop_grace_period") is not None:
        body["StopTimeout"] = round(parse_duration_ns(c["stop_grace_period"],
                                                      f"{where}.stop_grace_period") / 1e9)
    if networking:
        body["NetworkingConfig"] = networking
    return {k: v for k, v in body.items() if v is not None}


def _extra_hosts(value: Any) -> list[str] | None:
    if not value:
        return None
    if isinstance(value, dict):
        return [f"{k}:{v}" for k, v in value.items()]
    return [str(v).replace("=", ":", 1) if "=" in str(v) else str(v) for v in value]


def _logging(value: dict | None) -> dict | None:
    if not value:
        return None
    return {"Type": value.get("driver") or "", "Config": value.get("options") or {}}  # "": the daemon's


def _ulimit(name: str, value: Any) -> dict:
    if isinstance(value, dict):
        return {"Name": name, "Soft": int(value["soft"]), "Hard": int(value["hard"])}
    return {"Name": name, "Soft": int(value), "Hard": int(value)}


def _device(spec: Any) -> dict:
    parts = str(spec).split(":")
    host = parts[0]
    inner = parts[1] if len(parts) > 1 else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    return {"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms}
