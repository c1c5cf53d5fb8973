"""System commands: version, info, system prune, system df."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from engine import API_VERSION, __version__

from ._app import Cli, CommandError, arg, command
from ._client import ClientError
from ._format import TemplateError, bytes_size, human_size, render, render_rows


def _kv(lines: list[str], indent: str, pairs: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in pairs) + 2
    width = max(width, 18)
    for k, v in pairs:
        lines.append(f"{indent}{(k + ':').ljust(width)}{v}")


def client_info() -> dict:
    return {"Version": __version__, "ApiVersion": API_VERSION,
            "PythonVersion": platform.python_version(),
            "Os": sys.platform, "Arch": platform.machine()}


@command("version", "Show the pyengine version information",
         arg("-f", "--format", default=None, help="Format output using a Go template"))
def version(cli: Cli, a: argparse.Namespace) -> int:
    client = client_info()
    server = None
    error = None
    try:
        server = cli.client.get("/version")
    except ClientError as exc:
        error = exc
    if a.format:
        try:
            cli.print(render(a.format, {"Client": client, "Server": server}))
        except TemplateError as exc:
            raise CommandError(f"template parsing error: {exc}") from None
    else:
        lines = ["Client:"]
        _kv(lines, " ", [("Version", client["Version"]), ("API version", API_VERSION),
                         ("Python version", client["PythonVersion"]),
                         ("OS/Arch", f"{client['Os']}/{_arch(client['Arch'])}")])
        if server:
            lines += ["", f"Server: {server.get('Platform', {}).get('Name', '')}".rstrip(),
                      " Engine:"]
            api = server.get("ApiVersion", "")
            if server.get("MinAPIVersion"):
                api += f" (minimum version {server['MinAPIVersion']})"
            _kv(lines, "  ", [("Version", server.get("Version", "")), ("API version", api),
                              ("Go version", server.get("GoVersion", "")),
                              ("Git commit", server.get("GitCommit", "")),
                              ("Built", server.get("BuildTime", "")),
                              ("OS/Arch", f"{server.get('Os', '')}/{server.get('Arch', '')}"),
                              ("Experimental", str(bool(server.get("Experimental"))).lower())])
            for comp in server.get("Components") or []:
                if comp.get("Name") == "Engine":
                    continue
                lines.append(f" {comp.get('Name')}:")
                _kv(lines, "  ", [("Version", comp.get("Version", ""))])
        cli.print("\n".join(lines))
    if error:
        raise CommandError(str(error))
    return 0


def _arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@command("info", "Display system-wide information",
         arg("-f", "--format", default=None, help="Format output using a Go template"), aliases=("system info",))
def info(cli: Cli, a: argparse.Namespace) -> int:
    i = cli.client.get("/info")
    if a.format:
        try:
            cli.print(render(a.format, i))
        except TemplateError as exc:
            raise CommandError(f"template parsing error: {exc}") from None
        return 0
    lines = ["Client:", " Context:    default", f" Debug Mode: {str(cli.debug).lower()}", "",
             "Server:"]
    lines += [f" Containers: {i.get('Containers', 0)}",
              f"  Running: {i.get('ContainersRunning', 0)}",
              f"  Paused: {i.get('ContainersPaused', 0)}",
              f"  Stopped: {i.get('ContainersStopped', 0)}",
              f" Images: {i.get('Images', 0)}"]
    fields = [("Server Version", i.get("ServerVersion")), ("Storage Driver", i.get("Driver"))]
    for k, v in i.get("DriverStatus") or []:
        fields.append((f" {k}", v))
    fields += [("Logging Driver", i.get("LoggingDriver")), ("Cgroup Driver", i.get("CgroupDriver")),
               ("Cgroup Version", i.get("CgroupVersion"))]
    plugins = i.get("Plugins") or {}
    for line in [f" {k}: {v}" for k, v in fields if v not in (None, "")]:
        lines.append(line)
    if plugins:
        lines.append(" Plugins:")
        for kind in ("Volume", "Network", "Log"):
            if plugins.get(kind):
                lines.append(f"  {kind}: {' '.join(plugins[kind])}")
    more = [("Kernel Version", i.get("KernelVersion")),
            ("Operating System", i.get("OperatingSystem")), ("OSType", i.get("OSType")),
            ("Architecture", i.get("Architecture")), ("CPUs", i.get("NCPU")),
            ("Total Memory", bytes_size(i["MemTotal"]) if i.get("MemTotal") else None),
            ("Name", i.get("Name")), ("ID", i.get("ID")),
            ("Docker Root Dir", i.get("DockerRootDir")),
            ("Debug Mode", str(bool(i.get("Debug"))).lower())]
    lines += [f" {k}: {v}" for k, v in more if v not in (None, "")]
    lines += _listed("Labels", i.get("Labels") or [])
    lines.append(f" Experimental: {str(bool(i.get('ExperimentalBuild'))).lower()}")
    registries = i.get("RegistryConfig") or {}
    insecure = [name for name, index in sorted((registries.get("IndexConfigs") or {}).items())
                if not index.get("Secure", True)]
    lines += _listed("Insecure Registries", insecure + list(registries.get("InsecureRegistryCIDRs") or []))
    lines += _listed("Registry Mirrors", registries.get("Mirrors") or [])
    lines.append(f" Live Restore Enabled: {str(bool(i.get('LiveRestoreEnabled'))).lower()}")
    pools = i.get("DefaultAddressPools") or []
    if pools:
        lines += [" Default Address Pools:"] + [f"   Base: {p.get('Base')}, Size: {p.get('Size')}" for p in pools]
    cli.print("\n".join(lines))
    for w in i.get("Warnings") or []:
        cli.warn(w)
    return 0


def _listed(title: str, items: list) -> list[str]:
    """A titled list of docker info's text ("", when empty)."""
    return [f" {title}:"] + [f"  {item}" for item in items] if items else []


@command("system prune", "Remove unused data",
         arg("-a", "--all", action="store_true", help="Remove all unused images not just dangling ones"),
         arg("-f", "--force", action="store_true", help="Do not prompt for confirmation"),
         arg("--volumes", action="store_true", help="Prune anonymous volumes"),
         arg("--filter", action="append", default=[], help="Provide filter values (e.g. 'label=<key>=<value>')"))
def system_prune(cli: Cli, a: argparse.Namespace) -> int:
    """The docker CLI's order: stopped containers, unused networks, (volumes), images, build cache."""
    if not a.force:
        what = ["all stopped containers", "all networks not used by at least one container"]
        what += ["all anonymous volumes not used by at least one container"] if a.volumes else []
        what += ["all images without at least one container associated to them" if a.all else "all dangling images",
                 "all build cache" if a.all else "unused build cache"]
        sys.stdout.write("WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in what)
                         + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from ._format import filters_param

    try:
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    reclaimed = 0
    res = cli.client.post("/containers/prune", params={"filters": filters}) or {}
    cli.print_deleted("Containers", res.get("ContainersDeleted") or [])
    reclaimed += res.get("SpaceReclaimed") or 0
    res = cli.client.post("/networks/prune", params={"filters": filters}) or {}
    cli.print_deleted("Networks", res.get("NetworksDeleted") or [])
    if a.volumes:
        res = cli.client.post("/volumes/prune", params={"filters": filters}) or {}
        cli.print_deleted("Volumes", res.get("VolumesDeleted") or [])
        reclaimed += res.get("SpaceReclaimed") or 0
    img_filters = json.loads(filters) if filters else {}
    img_filters["dangling"] = ["false" if a.all else "true"]
    res = cli.client.post("/images/prune", params={"filters": json.dumps(img_filters)}) or {}
    cli.print_deleted("Images", res.get("ImagesDeleted") or [])
    reclaimed += res.get("SpaceReclaimed") or 0
    res = cli.client.post("/build/prune", params={"all": "1" if a.all else "0"}) or {}
    cli.print_deleted("build cache objects", res.get("CachesDeleted") or [])
    reclaimed += res.get("SpaceReclaimed") or 0
    cli.print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"


def _share(reclaimable: int, total: int) -> str:
    size = human_size(reclaimable, 4)
    return f"{size} ({reclaimable * 100 // total}%)" if total > 0 else size


def disk_usage_rows(du: dict) -> list[dict]:
    """GET /system/df as the docker CLI sums it up: one row per kind of object."""
    images = du.get("Images") or []
    layers = du.get("LayersSize") or 0
    used = sum(i.get("Size", 0) - i.get("SharedSize", 0) for i in images
               if i.get("Containers") and i.get("SharedSize", 0) != -1)
    containers = du.get("Containers") or []
    active = [c for c in containers if c.get("State") in ("running", "paused", "restarting")]
    container_size = sum(c.get("SizeRw") or 0 for c in containers)
    volumes = du.get("Volumes") or []
    usage = [(v.get("UsageData") or {}) for v in volumes]
    volume_size = sum(u.get("Size", 0) for u in usage if u.get("Size", -1) != -1)
    unused_volumes = sum(u.get("Size", 0) for u in usage if u.get("RefCount", 0) == 0 and u.get("Size", -1) != -1)
    cache = du.get("BuildCache") or []
    cache_size = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    cache_used = sum(b.get("Size", 0) for b in cache if b.get("InUse") and not b.get("Shared"))

    def row(kind: str, total: int, in_use: int, size: int, reclaimable: str) -> dict:
        return {"Type": kind, "TotalCount": str(total), "Active": str(in_use), "Size": human_size(size, 4),
                "Reclaimable": reclaimable}

    return [
        row("Images", len(images), sum(1 for i in images if i.get("Containers")), layers,
            _share(layers - used, layers)),
        row("Containers", len(containers), len(active), container_size,
            _share(container_size - sum(c.get("SizeRw") or 0 for c in active), container_size)),
        row("Local Volumes", len(volumes), sum(1 for u in usage if u.get("RefCount", 0) > 0), volume_size,
            _share(unused_volumes, volume_size)),
        row("Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")), cache_size,
            human_size(cache_size - cache_used, 4)),
    ]


@command("system df", "Show pyengine disk usage",
         arg("--format", default=None, help="Format output using a custom template"))
def system_df(cli: Cli, a: argparse.Namespace) -> int:
    rows = disk_usage_rows(cli.client.get("/system/df") or {})
    try:
        cli.out.write(render_rows(a.format or DF_TABLE, rows, DF_HEADERS))
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    return 0
