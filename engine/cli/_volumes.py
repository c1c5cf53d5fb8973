"""Volume commands: volume create/ls/inspect/rm/prune."""

from __future__ import annotations

import argparse

from ._app import Cli, CommandError, arg, command, key_values
from ._format import TemplateError, filters_param, render_rows

VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
                  "Labels": "LABELS", "CreatedAt": "CREATED AT"}
VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"


@command("volume create", "Create a volume",
         arg("name", nargs="?", default=""),
         arg("-d", "--driver", default="local", help="Specify volume driver name"),
         arg("--label", action="append", default=[], help="Set metadata for a volume"),
         arg("-o", "--opt", action="append", default=[], help="Set driver specific options"))
def volume_create(cli: Cli, a: argparse.Namespace) -> int:
    body = {"Name": a.name, "Driver": a.driver, "DriverOpts": key_values(a.opt, "--opt"),
            "Labels": key_values(a.label, "--label")}
    res = cli.client.post("/volumes/create", body)
    cli.print(res["Name"])
    return 0


@command("volume ls", "List volumes",
         arg("-f", "--filter", action="append", default=[], help="Provide filter values (e.g. 'dangling=true')"),
         arg("--format", default=None, help="Pretty-print volumes using a Go template"),
         arg("-q", "--quiet", action="store_true", help="Only display volume names"),
         aliases=("volume list",))
def volume_ls(cli: Cli, a: argparse.Namespace) -> int:
    try:
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    res = cli.client.get("/volumes", params={"filters": filters}) or {}
    vols = sorted(res.get("Volumes") or [], key=lambda v: v.get("Name", ""))
    if a.quiet:
        for v in vols:
            cli.print(v["Name"])
        return 0
    rows = [{
        "Name": v["Name"], "Driver": v.get("Driver", ""), "Scope": v.get("Scope", "local"),
        "Mountpoint": v.get("Mountpoint", ""), "CreatedAt": v.get("CreatedAt", ""),
        "Labels": ",".join(f"{k}={val}" for k, val in (v.get("Labels") or {}).items()),
    } for v in vols]
    try:
        out = render_rows(a.format or VOLUME_TABLE, rows, VOLUME_HEADERS)
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    cli.out.write(out)
    return 0


@command("volume inspect", "Display detailed information on one or more volumes",
         arg("volumes", nargs="+"),
         arg("-f", "--format", default=None, help="Format output using a Go template"))
def volume_inspect(cli: Cli, a: argparse.Namespace) -> int:
    return cli.inspect_each(a.volumes, "/volumes/{}", "volume", a.format)


@command("volume rm", "Remove one or more volumes", arg("volumes", nargs="+"),
         arg("-f", "--force", action="store_true", help="Force the removal of one or more volumes"),
         aliases=("volume remove",))
def volume_rm(cli: Cli, a: argparse.Namespace) -> int:
    return cli.remove_each(a.volumes, "/volumes/{}", params={"force": "1" if a.force else None})


@command("volume prune", "Remove unused local volumes",
         arg("-a", "--all", action="store_true", help="Remove all unused volumes, not just anonymous ones"),
         arg("-f", "--force", action="store_true", help="Do not prompt for confirmation"),
         arg("--filter", action="append", default=[], help="Provide filter values (e.g. 'label=<label>')"))
def volume_prune(cli: Cli, a: argparse.Namespace) -> int:
    if not a.force:
        cli.out.write("WARNING! This will remove all local volumes not used by at least one container.\n"
                      "Are you sure you want to continue? [y/N] ")
        cli.out.flush()
        answer = input()
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    items = list(a.filter) + (["all=true"] if a.all else [])
    try:
        filters = filters_param(items)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    res = cli.client.post("/volumes/prune", params={"filters": filters}) or {}
    cli.print_deleted("Volumes", res.get("VolumesDeleted") or [])
    cli.print(f"Total reclaimed space: {_size(res.get('SpaceReclaimed') or 0)}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return f"{n}B"
