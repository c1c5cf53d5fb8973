"""System routes: /_ping, /version, /info, /system/df."""

from __future__ import annotations

import datetime
import os
import platform
import socket
import sys
import time

import trio

import engine
from engine import API_VERSION, MIN_API_VERSION
from engine.containers import usage
from engine.disk import directory_size
from engine.timefmt import format_rfc3339nano

from ._image_json import image_summary
from .images import listed
from ._request import Request
from ._responses import DOCKER_COMPAT_VERSION, Response, empty, json_response
from ._router import Router

router = Router()

GIT_COMMIT = "pyengine"
_BUILD_TIME = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000000+00:00")

_PING_HEADERS = {
    "Api-Version": API_VERSION,
    "Builder-Version": "1",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


@router.route("OPTIONS", "/")
@router.route("OPTIONS", "/{anyroute:path}")
async def options(req: Request) -> Response:
    """dockerd answers OPTIONS on any path (its CORS preflight route) with an empty 200."""
    return empty(200)


@router.get("/_ping")
async def ping(req: Request) -> Response:
    return Response(b"OK", 200, _PING_HEADERS, "text/plain; charset=utf-8")


@router.head("/_ping")
async def ping_head(req: Request) -> Response:
    return Response(b"", 200, {**_PING_HEADERS, "Content-Length": "0"}, "text/plain; charset=utf-8")


def _go_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _py_version() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


@router.get("/version")
async def version(req: Request) -> Response:
    kernel = platform.release()
    details = {
        "ApiVersion": API_VERSION,
        "Arch": _go_arch(),
        "BuildTime": _BUILD_TIME,
        "Experimental": "false",
        "GitCommit": GIT_COMMIT,
        "GoVersion": _py_version(),
        "KernelVersion": kernel,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
        "PyengineVersion": engine.__version__,
    }
    return json_response({
        "Platform": {"Name": f"pyengine {engine.__version__}"},
        "Components": [{"Name": "Engine", "Version": DOCKER_COMPAT_VERSION, "Details": details}],
        "Version": DOCKER_COMPAT_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT,
        "GoVersion": _py_version(),
        "Os": "linux",
        "Arch": _go_arch(),
        "KernelVersion": kernel,
        "BuildTime": _BUILD_TIME,
    })


def _cgroup_version() -> str:
    try:
        return "2" if _fs_type("/sys/fs/cgroup") == "cgroup2" else "1"
    except OSError:
        return "1"


def _fs_type(path: str) -> str:
    best, fstype = "", ""
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and (path == parts[1] or path.startswith(parts[1].rstrip("/") + "/")):
                if len(parts[1]) >= len(best):
                    best, fstype = parts[1], parts[2]
    return fstype


def _os_release(key: str, default: str = "") -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith(key + "="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return default


def _backing_fs(path: str) -> str:
    """The data root's file system as dockerd names it (its "extfs" for ext2/3/4)."""
    try:
        fstype = _fs_type(path)
    except OSError:
        return "unknown"
    return {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}.get(fstype, fstype or "unknown")


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _host_facts() -> dict:
    return {
        "cgroup": _cgroup_version(),
        "os": _os_release("PRETTY_NAME", "Linux"),
        "os_version": _os_release("VERSION_ID"),
        "mem": _mem_total(),
        "ncpu": os.cpu_count() or 1,
        "name": socket.gethostname(),
        "kernel": platform.release(),
    }


@router.get("/info")
async def info(req: Request) -> Response:
    facts = await trio.to_thread.run_sync(_host_facts)
    daemon = req.daemon
    counts = {"Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0, "Images": 0}
    info_counts = getattr(daemon, "info_counts", None)
    if info_counts is not None:
        containers, images = info_counts()
        counts = {"Containers": containers.total, "ContainersRunning": containers.running,
                  "ContainersPaused": containers.paused, "ContainersStopped": containers.stopped, "Images": images}
    config = getattr(daemon, "config", None)
    data_root = getattr(config, "data_root", "")
    bus = getattr(daemon, "events", None)
    listeners = bus.statistics().subscribers if bus is not None else 0
    cgroup_version = facts["cgroup"]
    profile = getattr(config, "seccomp_profile", "") or "builtin"
    security = [f"name=seccomp,profile={'default' if profile == 'builtin' else profile}"]
    if cgroup_version == "2":
        security.append("name=cgroupns")
    return json_response({
        "ID": getattr(daemon, "id", "") or "",
        **counts,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", _backing_fs(data_root)], ["Supports d_type", "true"],
                         ["Native Overlay Diff", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": None,
            "Log": ["json-file"],
        },
        "MemoryLimit": True,
        "SwapLimit": True,
        "KernelMemory": False,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "OomKillDisable": cgroup_version == "1",
        "IPv4Forwarding": True,
        "BridgeNfIptables": True,
        "BridgeNfIp6tables": True,
        "Debug": bool(getattr(config, "debug", False)),
        "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": trio.lowlevel.current_statistics().tasks_living,
        "SystemTime": format_rfc3339nano(time.time_ns()),
        "LoggingDriver": getattr(config, "log_driver", "json-file"),
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "NEventsListener": listeners,
        "KernelVersion": facts["kernel"],
        "OperatingSystem": facts["os"],
        "OSVersion": facts["os_version"],
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": _registry_config(daemon),
        "NCPU": facts["ncpu"],
        "MemTotal": facts["mem"],
        "GenericResources": None,
        "DockerRootDir": data_root,
        "HttpProxy": _masked(_env("HTTP_PROXY")),
        "HttpsProxy": _masked(_env("HTTPS_PROXY")),
        "NoProxy": _env("NO_PROXY"),
        "Name": facts["name"],
        "Labels": list(getattr(config, "labels", [])),
        "ExperimentalBuild": False,
        "ServerVersion": DOCKER_COMPAT_VERSION,
        "Runtimes": {"pyengine": {"path": "pyengine-native"}},
        "DefaultRuntime": "pyengine",
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
            "Error": "", "RemoteManagers": None,
        },
        "LiveRestoreEnabled": bool(getattr(config, "live_restore", False)),
        "Isolation": "",
        "InitBinary": "pe-init",  # what `--init` runs as PID 1 (at Docker's /sbin/docker-init)
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": security,
        "DefaultAddressPools": [{"Base": p.base, "Size": p.size}
                                for p in getattr(config, "default_address_pools", [])] or None,
        "Warnings": None,
    })


def _env(name: str) -> str:
    return os.environ.get(name) or os.environ.get(name.lower()) or ""


def _masked(url: str) -> str:
    """A proxy URL with its user and password shown as xxxxx, as dockerd's info."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = "xxxxx:xxxxx" if parts.password is not None else "xxxxx"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def _registry_config(daemon) -> dict:
    """dockerd's: loopback and the CIDRs of --insecure-registry; its host names as index
    entries that are not secure; Docker Hub's mirrors."""
    images = getattr(daemon, "images", None)
    policy = getattr(images, "registry_policy", None)
    cidrs = ["127.0.0.0/8"] + [str(net) for net in (policy.cidrs() if policy else [])]
    indexes = {name: {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
               for name in (policy.hostnames() if policy else [])}
    mirrors = list(policy.mirrors) if policy else []
    indexes["docker.io"] = {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}
    return {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": list(dict.fromkeys(cidrs)), "IndexConfigs": dict(sorted(indexes.items())),
            "Mirrors": mirrors}


@router.get("/system/df")
async def system_df(req: Request) -> Response:
    """Docker's disk usage: sizes measured in a worker thread (directory walks)."""
    from engine.api._container_shapes import summary_shape

    daemon = req.daemon
    containers = daemon.containers.all()
    from engine.api.volumes import volume_shape

    volume_shapes = [volume_shape(v, await daemon.volumes.status(v)) for v in daemon.volumes.all()]

    def measure() -> list[int]:
        return [directory_size(v["Mountpoint"]) if v.get("Driver") == "local" and v.get("Mountpoint") else -1
                for v in volume_shapes]

    container_sizes = await usage.sizes(daemon.images, containers)
    volume_sizes = await trio.to_thread.run_sync(measure)
    listed_images = listed(daemon.images.list(), False)
    shared, layers_size = daemon.images.layer_usage(listed_images)
    images = []
    for image in listed_images:
        shape = image_summary(image)
        shape["Containers"] = sum(1 for c in containers if c.image_id == image.id)
        shape["SharedSize"] = shared[image.id]
        images.append(shape)
    container_shapes = []
    for c, (rw, rootfs) in zip(containers, container_sizes):
        shape = summary_shape(c, daemon)
        shape["SizeRw"], shape["SizeRootFs"] = rw, rootfs
        container_shapes.append(shape)
    for shape, size in zip(volume_shapes, volume_sizes):
        shape["UsageData"] = {"Size": size, "RefCount": len(daemon.volumes.users(shape["Name"]))}
    return json_response({"LayersSize": layers_size, "Images": images, "Containers": container_shapes,
                          "Volumes": volume_shapes, "BuildCache": await _build_cache(daemon)})


async def _build_cache(daemon) -> list:
    """/system/df's BuildCache entries."""
    builder = getattr(daemon, "builder", None)
    if builder is None:
        return []
    out = []
    for entry in await trio.to_thread.run_sync(builder.usage):
        r = entry.record
        out.append({
            "ID": r.key[:25], "Parent": r.parent[7:19] if r.parent.startswith("sha256:") else r.parent,
            "Type": "regular", "Description": r.description, "InUse": False, "Shared": entry.shared,
            "Size": r.size, "CreatedAt": format_rfc3339nano(r.created_ns, fixed=True),
            "LastUsedAt": format_rfc3339nano(r.last_used_ns, fixed=True), "UsageCount": r.usage_count,
        })
    return out
