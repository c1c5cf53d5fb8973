"""System commands: version, info, system prune."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from engine import API_VERSION, __version__

from ._app import Cli, CommandError, arg, command
from ._client import ClientError
from ._format import TemplateError, bytes_size, human_size, render


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
         arg("-f", "--format", default=None, help="Format output using a Go template"))
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
            ("Debug Mode", str(bool(i.get("Debug"))).lower()),
            ("Experimental", str(bool(i.get("ExperimentalBuild"))).lower()),
            ("Live Restore Enabled", str(bool(i.get("LiveRestoreEnabled"))).lower())]
    lines += [f" {k}: {v}" for k, v in more if v not in (None, "")]
    cli.print("\n".join(lines))
    for w in i.get("Warnings") or []:
        cli.warn(w)
    return 0


@command("system prune", "Remove unused data",
         arg("-a", "--all", action="store_true", help="Remove all unused images"),
         arg("-f", "--force", action="store_true", help="Do not prompt for confirmation"),
         arg("--filter", action="append", default=[], help="Provide filter values"))
def system_prune(cli: Cli, a: argparse.Namespace) -> int:
    if not a.force:
        sys.stdout.write("WARNING! This will remove:\n  - all stopped containers\n"
                         + ("  - all images without at least one container associated to them\n"
                            if a.all else "  - all dangling images\n")
                         + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from ._format import filters_param
    filters = filters_param(a.filter)
    reclaimed = 0
    res = cli.client.post("/containers/prune", params={"filters": filters}) or {}
    deleted = res.get("ContainersDeleted") or []
    if deleted:
        cli.print("Deleted Containers:\n" + "\n".join(deleted) + "\n")
    reclaimed += res.get("SpaceReclaimed") or 0
    img_filters = json.loads(filters) if filters else {}
    img_filters["dangling"] = ["false" if a.all else "true"]
    res = cli.client.post("/images/prune", params={"filters": json.dumps(img_filters)}) or {}
    items = res.get("ImagesDeleted") or []
    if items:
        cli.print("Deleted Images:")
        for it in items:
            for k in ("Untagged", "Deleted"):
                if it.get(k):
                    cli.print(f"{k.lower()}: {it[k]}")
        cli.print()
    reclaimed += res.get("SpaceReclaimed") or 0
    cli.print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
