"""Container commands: run create start stop restart kill rm pause unpause rename wait
inspect ps logs exec top stats cp port."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

from ._app import Cli, CommandError, alias, arg, command
from ._client import ClientError
from ._format import (Demuxer, SYSTEMERR, bytes_size, ellipsis, familiar_ref, filters_param,
                      go_quote, human_size, parse_api_time, parse_timestamp,
                      render_rows, short_id, tabulate, time_ago, TemplateError)
from ._opts import RUN_ARGS, OptError, build_create_body, parse_env
from ._images import _load_config
from ._stream import StreamError, Waiter, detach_key_bytes, proxy_signals, session

# ---------------------------------------------------------------------------------------------
# helpers


def for_each(cli: Cli, names: list[str], fn, *, echo: bool = True) -> int:
    """Apply fn to each name, print the name on success, collect errors like docker does."""
    failed = False
    for name in names:
        try:
            fn(name)
        except ClientError as exc:
            failed = True
            cli.warn(str(exc))
            continue
        if echo:
            cli.print(name)
    return 1 if failed else 0


def _run_error(exc: BaseException, cmd: str) -> CommandError:
    msg = str(exc)
    if not msg.endswith("."):
        msg += "."
    return CommandError(f"pyengine: {msg}\nSee 'pyengine {cmd} --help'.", 125)


def _start_error_status(message: str) -> int:
    """docker run: a start failure that is the command's fault exits 126/127, else 125."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low:
        return 126
    return 125


def create_container(cli: Cli, a: argparse.Namespace, cmd_name: str) -> str:
    """POST /containers/create as the docker CLI does it: the image pulled first with
    --pull always, or when it is missing with --pull missing (the default); the id written
    to --cidfile."""
    from ._images import pull_image

    if a.pull not in ("always", "missing", "never"):
        raise _run_error(f"invalid pull option: '{a.pull}': must be one of \"always\", \"missing\" or "
                         "\"never\"", cmd_name)
    if a.cidfile and os.path.exists(a.cidfile):
        raise _run_error(f"container ID file found, make sure the other container isn't running or delete "
                         f"{a.cidfile}", cmd_name)
    try:
        body = build_create_body(a, a.cmd)
    except OptError as exc:
        raise _run_error(exc, cmd_name) from None
    params = {"name": a.name} if a.name else None

    def pull() -> None:
        try:
            pull_image(cli, a.image, a.platform, quiet=a.quiet, out=sys.stderr)
        except (ClientError, CommandError) as exc:
            raise _run_error(exc, cmd_name) from None

    if a.pull == "always":
        pull()
    try:
        res = cli.client.post("/containers/create", body, params=params)
    except ClientError as exc:
        if not (exc.not_found and ("image" in exc.message.lower() or "No such" in exc.message)):
            raise _run_error(exc, cmd_name) from None
        cli.warn(f"Unable to find image '{familiar_ref(a.image)}' locally")
        if a.pull != "missing":
            raise _run_error(exc, cmd_name) from None
        pull()
        try:
            res = cli.client.post("/containers/create", body, params=params)
        except ClientError as again:
            raise _run_error(again, cmd_name) from None
    for w in res.get("Warnings") or []:
        cli.warn(f"WARNING: {w}")
    if a.cidfile:
        try:
            with open(a.cidfile, "x") as f:
                f.write(res["Id"])
        except OSError as exc:
            raise _run_error(f"failed to create the container ID file: {exc}", cmd_name) from None
    return res["Id"]


#: --sig-proxy as the docker CLI takes it: alone (true) or =true/=false.
SIG_PROXY_FLAG = dict(nargs="?", const="true", default="true", choices=["true", "false"],
                      help="Proxy received signals to the process (default true)")


def detach_keys_option(cli: Cli, flag_value: str | None, cmd: str) -> tuple[str, bytes]:
    """--detach-keys, else the config file's "detachKeys" (as the docker CLI), else the
    default; (the spec sent to the daemon, its bytes for the local side)."""
    spec = flag_value or _load_config().get("detachKeys") or ""
    try:
        return spec, detach_key_bytes(spec)
    except ValueError as exc:
        raise _run_error(f"Invalid detach keys ({spec}) provided: {exc}", cmd) from None


def attached_start(cli: Cli, cid: str, *, tty: bool, interactive: bool, auto_remove: bool,
                   run: bool, detach_keys: tuple[str, bytes] = ("", b""), start: bool = True,
                   sig_proxy: bool = True) -> int:
    """Attach, wait (headers first), start (unless `start` is False: `attach` to a running
    one), pump, return the container's exit status (0 when the user detached: the container
    goes on). Without a TTY the signals this process gets go to the container meanwhile
    (`sig_proxy`, the docker CLI's --sig-proxy)."""
    client = cli.client
    params = {"stream": True, "stdin": interactive, "stdout": True, "stderr": True}
    if detach_keys[0]:
        params["detachKeys"] = detach_keys[0]
    conn = client.hijack(f"/containers/{cid}/attach", params)
    with conn, proxy_signals(client, cid, sig_proxy and not tty):
        waiter = Waiter(client, cid, "removed" if auto_remove else "next-exit")
        try:
            waiter.wait_headers()
            if start:
                client.post(f"/containers/{cid}/start")
        except ClientError as exc:
            if run:
                err = _run_error(exc, "run")
                err.status = _start_error_status(exc.message)
                raise err from None
            raise
        resize = (lambda h, w: client.post(f"/containers/{cid}/resize",
                                           params={"h": h, "w": w})) if tty else None
        try:
            if session(cli, conn, tty=tty, interactive=interactive, resize=resize,
                       detach_keys=detach_keys[1] or detach_key_bytes(None)):
                return 0
        except StreamError as exc:
            raise CommandError(str(exc), 125 if run else 1) from None
        try:
            return waiter.status()
        except StreamError as exc:
            raise CommandError(f"Error waiting for container: {exc}", 125 if start else 1) from None


# ---------------------------------------------------------------------------------------------
# lifecycle


@command("run", "Create and run a new container from an image", *RUN_ARGS,
         arg("--detach-keys", default=None, help="Override the key sequence for detaching a container"),
         arg("--sig-proxy", **SIG_PROXY_FLAG),
         stop_after=1,
         usage="pyengine run [OPTIONS] IMAGE [COMMAND] [ARG...]")
def run(cli: Cli, a: argparse.Namespace) -> int:
    keys = detach_keys_option(cli, getattr(a, "detach_keys", None), "run")  # refused before anything is made
    cid = create_container(cli, a, "run")
    if a.detach:
        try:
            cli.client.post(f"/containers/{cid}/start")
        except ClientError as exc:
            err = _run_error(exc, "run")
            err.status = _start_error_status(exc.message)
            raise err from None
        cli.print(cid)
        return 0
    return attached_start(cli, cid, tty=a.tty, interactive=a.interactive, auto_remove=a.rm,
                          run=True, detach_keys=keys, sig_proxy=a.sig_proxy == "true")


@command("create", "Create a new container", *RUN_ARGS, stop_after=1,
         usage="pyengine create [OPTIONS] IMAGE [COMMAND] [ARG...]")
def create(cli: Cli, a: argparse.Namespace) -> int:
    cli.print(create_container(cli, a, "create"))
    return 0


@command("start", "Start one or more stopped containers",
         arg("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR"),
         arg("-i", "--interactive", action="store_true", help="Attach container's STDIN"),
         arg("--detach-keys", default=None, help="Override the key sequence for detaching a container"),
         arg("containers", nargs="+"))
def start(cli: Cli, a: argparse.Namespace) -> int:
    if a.attach or a.interactive:
        if len(a.containers) > 1:
            raise CommandError("you cannot start and attach multiple containers at once")
        info = cli.client.get(f"/containers/{a.containers[0]}/json")
        cfg = info.get("Config") or {}
        auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
        return attached_start(cli, info["Id"], tty=bool(cfg.get("Tty")),
                              interactive=a.interactive and bool(cfg.get("OpenStdin")),
                              auto_remove=auto_remove, run=False,
                              detach_keys=detach_keys_option(cli, getattr(a, "detach_keys", None), "start"))
    status = for_each(cli, a.containers, lambda n: cli.client.post(f"/containers/{n}/start"))
    if status:
        cli.warn("Error: failed to start containers: " + ", ".join(a.containers))
    return status


STOP_ARGS = (
    arg("-s", "--signal", default=None, help="Signal to send to the container"),
    arg("-t", "--time", "--timeout", dest="time", type=int, default=None, help="Seconds to wait before killing it"),
    arg("containers", nargs="+"),
)


@command("stop", "Stop one or more running containers", *STOP_ARGS)
def stop(cli: Cli, a: argparse.Namespace) -> int:
    return for_each(cli, a.containers,
                    lambda n: cli.client.post(f"/containers/{n}/stop", params={"t": a.time, "signal": a.signal}))


@command("restart", "Restart one or more containers", *STOP_ARGS)
def restart(cli: Cli, a: argparse.Namespace) -> int:
    return for_each(cli, a.containers,
                    lambda n: cli.client.post(f"/containers/{n}/restart", params={"t": a.time, "signal": a.signal}))


@command("kill", "Kill one or more running containers",
         arg("-s", "--signal", default=None, help="Signal to send to the container"),
         arg("containers", nargs="+"))
def kill(cli: Cli, a: argparse.Namespace) -> int:
    return for_each(cli, a.containers, lambda n: cli.client.post(
        f"/containers/{n}/kill", params={"signal": a.signal}))


@command("rm", "Remove one or more containers",
         arg("-f", "--force", action="store_true", help="Force the removal of a running one"),
         arg("-v", "--volumes", action="store_true", help="Remove anonymous volumes"),
         arg("-l", "--link", action="store_true", help="Remove the specified link"),
         arg("containers", nargs="+"))
def rm(cli: Cli, a: argparse.Namespace) -> int:
    return for_each(cli, a.containers, lambda n: cli.client.delete(
        f"/containers/{n}", params={"force": a.force or None, "v": a.volumes or None,
                                    "link": a.link or None}))


@command("pause", "Pause all processes within one or more containers",
         arg("containers", nargs="+"))
def pause(cli: Cli, a: argparse.Namespace) -> int:
    return for_each(cli, a.containers, lambda n: cli.client.post(f"/containers/{n}/pause"))


@command("unpause", "Unpause all processes within one or more containers",
         arg("containers", nargs="+"))
def unpause(cli: Cli, a: argparse.Namespace) -> int:
    return for_each(cli, a.containers, lambda n: cli.client.post(f"/containers/{n}/unpause"))


@command("rename", "Rename a container", arg("container"), arg("new_name"))
def rename(cli: Cli, a: argparse.Namespace) -> int:
    cli.client.post(f"/containers/{a.container}/rename", params={"name": a.new_name})
    return 0


@command("wait", "Block until containers stop, then print their exit codes",
         arg("containers", nargs="+"))
def wait(cli: Cli, a: argparse.Namespace) -> int:
    def one(name: str) -> None:
        res = cli.client.post(f"/containers/{name}/wait")
        cli.print(str(res.get("StatusCode", "")))

    return for_each(cli, a.containers, one, echo=False)


# ---------------------------------------------------------------------------------------------
# inspect


@command("inspect", "Return low-level information on pyengine objects",
         arg("-f", "--format", default=None, help="Format output using a Go template"),
         arg("-s", "--size", action="store_true", help="Display total file sizes (containers)"),
         arg("--type", choices=["container", "image"], default=None,
             help="Return JSON for the specified type"),
         arg("names", nargs="+"))
def inspect(cli: Cli, a: argparse.Namespace) -> int:
    found: list[Any] = []
    missing = False
    for name in a.names:
        obj = None
        for kind in (["container", "image"] if a.type is None else [a.type]):
            path = f"/containers/{name}/json" if kind == "container" else f"/images/{name}/json"
            params = {"size": True} if a.size and kind == "container" else None
            try:
                obj = cli.client.get(path, params=params)
                break
            except ClientError as exc:
                if not exc.not_found:
                    raise
        if obj is None:
            missing = True
            what = {"container": "container", "image": "image"}.get(a.type or "", "object")
            cli.warn(f"Error: No such {what}: {name}")
            continue
        found.append(obj)
    cli.print_objects(found, a.format)
    return 1 if missing else 0


alias("container inspect", "inspect", "--type", "container")
alias("image inspect", "inspect", "--type", "image")

# ---------------------------------------------------------------------------------------------
# ps

PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "Size": "SIZE",
    "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
    "State": "STATE", "LocalVolumes": "LOCAL VOLUMES",
}
PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def display_ports(ports: list[dict]) -> str:
    """docker's DisplayablePorts (without range folding)."""
    out = []
    for p in sorted(ports or [], key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""),
                                                 p.get("IP", ""), p.get("PublicPort", 0))):
        priv, typ = p.get("PrivatePort"), p.get("Type", "tcp")
        if p.get("PublicPort"):
            ip = p.get("IP", "")
            host = f"[{ip}]" if ":" in ip else ip
            out.append(f"{host}:{p['PublicPort']}->{priv}/{typ}")
        else:
            out.append(f"{priv}/{typ}")
    seen: list[str] = []
    for s in out:
        if s not in seen:
            seen.append(s)
    return ", ".join(seen)


def _go_time(t: float | None) -> str:
    if t is None:
        return ""
    lt = time.localtime(t)
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", lt)


def ps_row(c: dict, trunc: bool = True, now: float | None = None) -> dict:
    names = [n[1:] if n.startswith("/") else n for n in c.get("Names") or []]
    if trunc:
        for n in names:
            if "/" not in n:
                names = [n]
                break
    image = c.get("Image", "")
    if trunc and image.startswith("sha256:"):
        image = short_id(image)
    command = c.get("Command", "")
    if trunc:
        command = ellipsis(command, 20)
    created = parse_api_time(c.get("Created"))
    size = ""
    if "SizeRw" in c or "SizeRootFs" in c:
        size = human_size(c.get("SizeRw") or 0)
        if c.get("SizeRootFs"):
            size += f" (virtual {human_size(c['SizeRootFs'])})"
    labels = c.get("Labels") or {}
    nets = sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    mounts = [m.get("Name") or m.get("Source", "") for m in c.get("Mounts") or []]
    return {
        "ID": short_id(c.get("Id", ""), not trunc),
        "Image": image,
        "Command": go_quote(command),
        "CreatedAt": _go_time(created),
        "RunningFor": time_ago(created, now),
        "Ports": display_ports(c.get("Ports") or []),
        "Status": c.get("Status") or c.get("State", ""),
        "State": c.get("State", ""),
        "Size": size,
        "Names": ",".join(names),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": ",".join(mounts),
        "Networks": ",".join(nets),
        "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
    }


@command("ps", "List containers",
         arg("-a", "--all", action="store_true", help="Show all containers"),
         arg("-q", "--quiet", action="store_true", help="Only display container IDs"),
         arg("--no-trunc", action="store_true", help="Don't truncate output"),
         arg("-n", "--last", type=int, default=-1, help="Show n last created containers"),
         arg("-l", "--latest", action="store_true", help="Show the latest created container"),
         arg("-s", "--size", action="store_true", help="Display total file sizes"),
         arg("-f", "--filter", action="append", default=[], help="Filter output (k=v)"),
         arg("--format", default=None, help="Format output using a Go template"),
         aliases=("container ls", "container ps", "container list"))
def ps(cli: Cli, a: argparse.Namespace) -> int:
    try:
        filters = filters_param(a.filter)
    except ValueError as exc:
        raise CommandError(str(exc), 125) from None
    limit = 1 if a.latest else a.last
    params = {"all": True if (a.all or limit > 0) else None,
              "limit": limit if limit > 0 else None,
              "size": True if a.size else None, "filters": filters}
    containers = cli.client.get("/containers/json", params=params) or []
    now = time.time()
    rows = [ps_row(c, not a.no_trunc, now) for c in containers]
    if a.quiet:
        fmt = "{{.ID}}"
    elif a.format:
        fmt = a.format
    else:
        fmt = PS_TABLE + ("\t{{.Size}}" if a.size else "")
    try:
        sys.stdout.write(render_rows(fmt, rows, PS_HEADERS))
    except TemplateError as exc:
        raise CommandError(f"template parsing error: {exc}") from None
    return 0


# ---------------------------------------------------------------------------------------------
# logs


def stream_frames(cli: Cli, resp, tty: bool) -> None:
    demux = None if tty else Demuxer()
    for chunk in resp.iter_raw():
        if demux is None:
            cli.write_bytes(chunk, 1)
            continue
        for stream, payload in demux.feed(chunk):
            if stream == SYSTEMERR:
                raise CommandError(payload.decode("utf-8", "replace"))
            cli.write_bytes(payload, 2 if stream == 2 else 1)


@command("logs", "Fetch the logs of a container",
         arg("-f", "--follow", action="store_true", help="Follow log output"),
         arg("--tail", "-n", default="all", help="Number of lines to show from the end"),
         arg("-t", "--timestamps", action="store_true", help="Show timestamps"),
         arg("--since", default=None, help="Show logs since timestamp or relative (42m)"),
         arg("--until", default=None, help="Show logs before a timestamp or relative"),
         arg("--details", action="store_true", help="Show extra details"),
         arg("container"))
def logs(cli: Cli, a: argparse.Namespace) -> int:
    info = cli.client.get(f"/containers/{a.container}/json")
    try:
        since = parse_timestamp(a.since) if a.since else None
        until = parse_timestamp(a.until) if a.until else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    params = {"stdout": True, "stderr": True, "follow": a.follow or None, "tail": a.tail,
              "timestamps": a.timestamps or None, "details": a.details or None,
              "since": since, "until": until}
    with cli.client.stream("GET", f"/containers/{info['Id']}/logs", params=params) as resp:
        stream_frames(cli, resp, bool((info.get("Config") or {}).get("Tty")))
    return 0


# ---------------------------------------------------------------------------------------------
# exec


@command("exec", "Execute a command in a running container",
         arg("-d", "--detach", action="store_true", help="Run the command in the background"),
         arg("-i", "--interactive", action="store_true", help="Keep STDIN open"),
         arg("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY"),
         arg("-u", "--user", default="", help="Username or UID"),
         arg("-w", "--workdir", default="", help="Working directory inside the container"),
         arg("-e", "--env", action="append", default=[], help="Set environment variables"),
         arg("--env-file", action="append", default=[], help="Read in a file of environment variables"),
         arg("--privileged", action="store_true", help="Give extended privileges"),
         arg("--detach-keys", default=None, help="Override the key sequence for detaching a container"),
         arg("container"), stop_after=1,
         usage="pyengine exec [OPTIONS] CONTAINER COMMAND [ARG...]")
def exec_(cli: Cli, a: argparse.Namespace) -> int:
    if not a.cmd:
        raise CommandError("pyengine exec: requires at least 2 arguments.\n"
                           "See 'pyengine exec --help'.", 125)
    keys = detach_keys_option(cli, getattr(a, "detach_keys", None), "exec")
    try:
        exec_env = parse_env(a.env, a.env_file)
    except OptError as exc:
        raise CommandError(f"pyengine: {exc}", 125) from None
    body = {"User": a.user, "Privileged": a.privileged, "Tty": a.tty,
            "AttachStdin": a.interactive and not a.detach, "AttachStdout": not a.detach,
            "AttachStderr": not a.detach, "Detach": a.detach, "DetachKeys": keys[0],
            "Env": exec_env, "WorkingDir": a.workdir, "Cmd": a.cmd}
    client = cli.client
    eid = client.post(f"/containers/{a.container}/exec", body)["Id"]
    if a.detach:
        client.post(f"/exec/{eid}/start", {"Detach": True, "Tty": a.tty})
        return 0
    conn = client.hijack(f"/exec/{eid}/start", body={"Detach": False, "Tty": a.tty})
    resize = (lambda h, w: client.post(f"/exec/{eid}/resize", params={"h": h, "w": w})
              ) if a.tty else None
    with conn:
        try:
            if session(cli, conn, tty=a.tty, interactive=a.interactive, resize=resize, detach_keys=keys[1]):
                return 0  # detached: the exec goes on
        except StreamError as exc:
            raise CommandError(str(exc), 126) from None
    for _ in range(50):
        info = client.get(f"/exec/{eid}/json")
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        time.sleep(0.1)
    return int(info.get("ExitCode") or 0)


# ---------------------------------------------------------------------------------------------
# top, port


@command("top", "Display the running processes of a container", arg("container"),
         stop_after=1, rest="ps_args", usage="pyengine top CONTAINER [ps OPTIONS]")
def top(cli: Cli, a: argparse.Namespace) -> int:
    params = {"ps_args": " ".join(a.ps_args)} if a.ps_args else None
    res = cli.client.get(f"/containers/{a.container}/top", params=params)
    rows = [res.get("Titles") or []] + [list(p) for p in res.get("Processes") or []]
    sys.stdout.write(tabulate(rows, minwidth=20))
    return 0


def _port_lines(ports: dict, want: str | None) -> list[str]:
    lines = []
    if want and "/" not in want:
        want += "/tcp"
    for key in sorted(ports or {}, key=lambda k: (int(k.split("/")[0]), k)):
        if want and key != want:
            continue
        for b in ports[key] or []:
            ip = b.get("HostIp", "") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            addr = f"{host}:{b.get('HostPort', '')}"
            lines.append(addr if want else f"{key} -> {addr}")
    return lines


@command("port", "List port mappings or a specific mapping for the container",
         arg("container"), arg("private_port", nargs="?", default=None))
def port(cli: Cli, a: argparse.Namespace) -> int:
    info = cli.client.get(f"/containers/{a.container}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    lines = _port_lines(ports, a.private_port)
    if a.private_port and not lines:
        want = a.private_port if "/" in a.private_port else a.private_port + "/tcp"
        raise CommandError(f"Error: No public port '{want}' published for {a.container}")
    for line in lines:
        cli.print(line)
    return 0


# ---------------------------------------------------------------------------------------------
# stats

STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
               "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def cpu_percent(s: dict) -> float:
    """docker CLI's calculateCPUPercentUnix."""
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = float((cpu.get("cpu_usage") or {}).get("total_usage", 0)) - float(
        (pre.get("cpu_usage") or {}).get("total_usage", 0))
    sys_delta = float(cpu.get("system_cpu_usage", 0) or 0) - float(
        pre.get("system_cpu_usage", 0) or 0)
    online = float(cpu.get("online_cpus") or 0)
    if online == 0:
        online = float(len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []))
    if sys_delta > 0 and cpu_delta > 0:
        return cpu_delta / sys_delta * online * 100.0
    return 0.0


def mem_usage(mem: dict) -> float:
    """docker CLI's calculateMemUsageUnixNoCache (v1 total_inactive_file, v2 inactive_file)."""
    usage = mem.get("usage") or 0
    st = mem.get("stats") or {}
    if "total_inactive_file" in st and st["total_inactive_file"] < usage:
        return float(usage - st["total_inactive_file"])
    if st.get("inactive_file", usage) < usage:
        return float(usage - st["inactive_file"])
    return float(usage)


def stats_row(s: dict, container: str = "", trunc: bool = True) -> dict:
    mem = s.get("memory_stats") or {}
    used = mem_usage(mem)
    limit = float(mem.get("limit") or 0)
    mem_pct = used / limit * 100.0 if limit else 0.0
    rx = tx = 0
    for n in (s.get("networks") or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    rd = wr = 0
    for e in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = (e.get("op") or "").lower()
        if op == "read":
            rd += e.get("value", 0)
        elif op == "write":
            wr += e.get("value", 0)
    name = s.get("name", "")
    return {
        "ID": short_id(s.get("id", ""), not trunc),
        "Container": container or short_id(s.get("id", "")),
        "Name": name[1:] if name.startswith("/") else name,
        "CPUPerc": f"{cpu_percent(s):.2f}%",
        "MemUsage": f"{bytes_size(used)} / {bytes_size(limit)}",
        "MemPerc": f"{mem_pct:.2f}%",
        "NetIO": f"{human_size(rx)} / {human_size(tx)}",
        "BlockIO": f"{human_size(rd)} / {human_size(wr)}",
        "PIDs": str((s.get("pids_stats") or {}).get("current", 0)),
    }


@command("stats", "Display a live stream of container(s) resource usage statistics",
         arg("-a", "--all", action="store_true", help="Show all containers"),
         arg("--no-stream", action="store_true", help="Print the first result and exit"),
         arg("--no-trunc", action="store_true", help="Do not truncate output"),
         arg("--format", default=None, help="Format output using a Go template"),
         arg("containers", nargs="*"))
def stats(cli: Cli, a: argparse.Namespace) -> int:
    client = cli.client
    names = a.containers or [c["Id"] for c in
                             client.get("/containers/json", params={"all": a.all or None})]
    fmt = a.format or STATS_TABLE
    if a.no_stream:
        rows, failed = [], False
        for n in names:
            try:
                s = client.get(f"/containers/{n}/stats", params={"stream": False})
            except ClientError as exc:
                cli.warn(str(exc))
                failed = True
                continue
            rows.append(stats_row(s, n, not a.no_trunc))
        sys.stdout.write(render_rows(fmt, rows, STATS_HEADERS))
        return 1 if failed else 0
    latest: dict[str, dict] = {}

    def follow(n: str) -> None:
        try:
            with client.stream("GET", f"/containers/{n}/stats", params={"stream": True}) as r:
                from ._format import iter_json_stream
                for s in iter_json_stream(r.iter_raw()):
                    latest[n] = stats_row(s, n, not a.no_trunc)
        except ClientError as exc:
            latest.pop(n, None)
            cli.warn(str(exc))

    for n in names:
        threading.Thread(target=follow, args=(n,), daemon=True).start()
    tty = sys.stdout.isatty()
    while True:
        time.sleep(1.0)
        rows = [latest[n] for n in names if n in latest]
        if tty:
            sys.stdout.write("\033[2J\033[H")
        sys.stdout.write(render_rows(fmt, rows, STATS_HEADERS))
        sys.stdout.flush()
