"""`pyengine compose [-f FILE…] [-p NAME] [--profile P] [--env-file F] COMMAND`: the CLI side
of engine.compose (argument parsing, tables, attached sessions); the operations themselves
run as engine.compose's tasks (threads, structured as trio's) over this CLI's API client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

from engine import compose
from engine.compose import labels as L
from engine.compose import tasks
from engine.compose.errors import first_error

from ._app import Cli, CommandError, UsageError, _Parser, arg, command, split_argv
from ._client import ClientError
from ._format import iter_json_stream, tabulate

GLOBAL_ARGS = [
    arg("-f", "--file", action="append", default=[], help="Compose configuration files"),
    arg("-p", "--project-name", default=None, help="Project name"),
    arg("--profile", action="append", default=[], help="Profiles to enable"),
    arg("--env-file", action="append", default=[], help="Alternate environment files"),
    arg("--project-directory", default=None, help="Alternate working directory"),
    arg("--progress", default="auto", choices=["auto", "tty", "plain", "quiet"],
        help="Progress output type"),
    arg("--ansi", default="auto", choices=["auto", "never", "always"],
        help="Control when to print ANSI control characters"),
]

# commands that need only the project's name: everything else is found by label
LABEL_ONLY = {"down", "ps", "logs", "stop", "start", "restart", "kill", "rm", "top", "events"}

SUBCOMMANDS: dict[str, tuple[str, list, int | None, Callable]] = {}


def subcommand(name: str, help: str, *args: Any, stop_after: int | None = None):
    def deco(fn: Callable) -> Callable:
        SUBCOMMANDS[name] = (help, list(args), stop_after, fn)
        return fn

    return deco


def _parser(prog: str, help: str, args: list, epilog: str | None = None) -> _Parser:
    p = _Parser(prog=prog, description=help, add_help=False, epilog=epilog,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--help", action="help", help="Print usage")
    for flags, kw in args:
        p.add_argument(*flags, **kw)
    return p


def _registry_auth(ref: str) -> dict:
    from ._images import auth_header, registry_of  # pulls and pushes only

    return auth_header(registry_of(ref))


class Ctx:
    """One compose invocation: the CLI, the global options, the project (loaded lazily)."""

    def __init__(self, cli: Cli, g: argparse.Namespace):
        self.cli = cli
        self.g = g
        self._project: compose.Project | None = None
        self.targets: list[str] = []
        self.label_only = False  # the command works from labels alone (`-p NAME down`)

    @property
    def project(self) -> compose.Project:
        if self._project is None:
            try:
                self._project = compose.load_project(compose.LoadOptions(
                    files=self.g.file, project_name=self.g.project_name,
                    project_directory=self.g.project_directory, profiles=self.g.profile,
                    env_files=self.g.env_file, targets=self.targets))
            except compose.NoConfigFile:
                name = self.g.project_name or os.environ.get("COMPOSE_PROJECT_NAME")
                if not (self.label_only and name):
                    raise
                self._project = compose.empty_project(name, os.getcwd())
        return self._project

    def session(self, progress: str | None = None) -> compose.Session:
        api = compose.Api(self.cli.client, _registry_auth)
        return compose.Session(api, self.project,
                               compose.make_progress(progress or self.g.progress),
                               self.cli.warn)

    def run(self, fn: Callable, *args: Any, progress: str | None = None, **kw: Any) -> Any:
        """fn(session, *args, **kw) under a root cancel scope, with the progress view closed
        afterwards."""
        s = self.session(progress)
        try:
            return tasks.run(fn, s, *args, **kw)
        except BaseExceptionGroup as group:
            # concurrent services failed: report the first failure as one line
            leaf = first_error(group, (compose.ComposeError, ClientError, KeyboardInterrupt))
            if leaf is None:
                raise
            raise leaf from None
        finally:
            s.progress.close()

    @property
    def colour(self) -> bool:
        if self.g.ansi == "never":
            return False
        return self.g.ansi == "always" or sys.stdout.isatty()


@command("compose", "Define and run multi-container applications (Compose Specification)",
         stop_after=0, rest="argv", usage="pyengine compose [OPTIONS] COMMAND")
def compose_cmd(cli: Cli, a: argparse.Namespace) -> int:
    commands = "\n".join(f"  {n:<10}{h}" for n, (h, *_r) in sorted(SUBCOMMANDS.items()))
    gparser = _parser("pyengine compose", "Define and run multi-container applications",
                      GLOBAL_ARGS, epilog="commands:\n" + commands)
    head, tail = split_argv(gparser, a.argv, 1)
    try:
        g = gparser.parse_args(head[:-1] if head and not head[-1].startswith("-") else head)
    except SystemExit as exc:
        return int(exc.code or 0)
    except UsageError as exc:
        raise CommandError(f"pyengine compose: {exc}\nSee 'pyengine compose --help'.", 125)
    name = head[-1] if head and not head[-1].startswith("-") else None
    if name is None or name not in SUBCOMMANDS:
        lines = ["Usage:  pyengine compose [OPTIONS] COMMAND", "", "Commands:"]
        lines += [f"  {n:<10}{h}" for n, (h, *_rest) in sorted(SUBCOMMANDS.items())]
        if name is None:
            cli.print("\n".join(lines))
            return 0
        raise CommandError(f"unknown compose command: {name!r}\n" + "\n".join(lines))
    help, args, stop_after, fn = SUBCOMMANDS[name]
    parser = _parser(f"pyengine compose {name}", help, args)
    try:
        if stop_after is not None:
            shead, rest = split_argv(parser, tail, stop_after)
            sa = parser.parse_args(shead)
            sa.cmd = rest
        else:
            sa = parser.parse_args(tail)
    except SystemExit as exc:
        return int(exc.code or 0)
    except UsageError as exc:
        raise CommandError(f"pyengine compose {name}: {exc}\n"
                           f"See 'pyengine compose {name} --help'.", 125) from None
    ctx = Ctx(cli, g)
    ctx.label_only = name in LABEL_ONLY
    named = getattr(sa, "services", None)
    ctx.targets = list(named) if isinstance(named, list) else []
    if getattr(sa, "service", None):
        ctx.targets.append(sa.service)
    try:
        return int(fn(ctx, sa) or 0)
    except compose.ComposeError as exc:
        raise CommandError(str(exc)) from None
    except ClientError as exc:
        raise CommandError(str(exc)) from None


def _scale(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        svc, _, n = item.partition("=")
        try:
            out[svc] = int(n)
        except ValueError:
            raise CommandError(f"--scale: invalid value {item!r} (SERVICE=NUM)") from None
    return out


SERVICES = arg("services", nargs="*", help="Services")


@subcommand("up", "Create and start containers",
            arg("-d", "--detach", action="store_true", help="Run in the background"),
            arg("--build", action="store_true", help="Build images before starting"),
            arg("--no-build", action="store_true", help="Don't build an image"),
            arg("--pull", default=None, choices=["always", "missing", "never"]),
            arg("--scale", action="append", default=[], help="SERVICE=NUM"),
            arg("--remove-orphans", action="store_true"),
            arg("--wait", action="store_true", help="Wait for services to be running|healthy"),
            arg("--wait-timeout", type=float, default=None),
            arg("--force-recreate", action="store_true"),
            arg("--no-recreate", action="store_true"),
            arg("--no-deps", action="store_true", help="Don't start linked services"),
            arg("--no-start", action="store_true"),
            arg("--quiet-pull", action="store_true"),
            arg("--abort-on-container-exit", action="store_true",
                help="Stop all containers if any container was stopped"),
            arg("--abort-on-container-failure", action="store_true",
                help="Stop all containers if any container exited with failure"),
            arg("--exit-code-from", default=None, metavar="SERVICE",
                help="Return the exit code of the selected service container"),
            arg("--attach", action="append", default=[], help="Only attach to these services"),
            arg("--no-attach", action="append", default=[],
                help="Don't attach (stream logs) to these services"),
            arg("--attach-dependencies", action="store_true",
                help="Attach to the log output of dependent services too"),
            arg("--no-color", action="store_true"), arg("--no-log-prefix", action="store_true"),
            arg("--timestamps", action="store_true"),
            arg("-t", "--timeout", type=int, default=None), SERVICES)
def up(ctx: Ctx, a: argparse.Namespace) -> int:
    cascade = _check_up_flags(a)
    opts = compose.UpOptions(services=a.services, scale=_scale(a.scale), build=a.build,
                             pull=a.pull, force_recreate=a.force_recreate,
                             no_recreate=a.no_recreate, no_deps=a.no_deps,
                             remove_orphans=a.remove_orphans, wait=a.wait,
                             wait_timeout=a.wait_timeout, no_start=a.no_start)
    if a.detach or a.wait or a.no_start:
        ctx.run(compose.up, opts)
        return 0
    fg = compose.ForegroundOptions(
        attach=a.attach or None, no_attach=a.no_attach,
        attach_dependencies=a.attach_dependencies, cascade=cascade,
        exit_code_from=a.exit_code_from, timeout=a.timeout,
        colour=ctx.colour and not a.no_color, prefix=not a.no_log_prefix,
        timestamps=a.timestamps)
    try:
        return ctx.run(compose.run_foreground, opts, fg, ctx.g.progress)
    except KeyboardInterrupt:  # while converging; once attached, signals stop the project
        ctx.cli.warn("Gracefully stopping... (press Ctrl+C again to force)")
        ctx.run(compose.stop, a.services or None, a.timeout)
        return 130


def _check_up_flags(a: argparse.Namespace) -> str:
    """Docker Compose's rules between up's flags; returns the first-exit policy."""
    if a.exit_code_from and not a.abort_on_container_failure:
        a.abort_on_container_exit = True
    if a.abort_on_container_exit and a.abort_on_container_failure:
        raise CommandError("--abort-on-container-failure cannot be combined with "
                           "--abort-on-container-exit")
    if a.wait and (a.attach_dependencies or a.abort_on_container_exit or a.attach):
        raise CommandError("--wait cannot be combined with --abort-on-container-exit, "
                           "--attach or --attach-dependencies")
    if a.build and a.no_build:
        raise CommandError("--build and --no-build are incompatible")
    if a.detach and (a.attach_dependencies or a.abort_on_container_exit or
                     a.abort_on_container_failure or a.attach):
        raise CommandError("--detach cannot be combined with --abort-on-container-exit, "
                           "--abort-on-container-failure, --attach or --attach-dependencies")
    if a.force_recreate and a.no_recreate:
        raise CommandError("--force-recreate and --no-recreate are incompatible")
    if a.attach and a.attach_dependencies:
        raise CommandError("cannot combine --attach and --attach-dependencies")
    if a.abort_on_container_exit:
        return "stop"
    return "fail" if a.abort_on_container_failure else "ignore"


@subcommand("down", "Stop and remove containers, networks",
            arg("-v", "--volumes", action="store_true", help="Remove named volumes"),
            arg("--rmi", default=None, help="Remove images used by services (local|all)"),
            arg("--remove-orphans", action="store_true"),
            arg("-t", "--timeout", type=int, default=None))
def down(ctx: Ctx, a: argparse.Namespace) -> int:
    ctx.run(_down, a)
    return 0


def _down(s: compose.Session, a: argparse.Namespace) -> None:
    compose.down(s, volumes=a.volumes, rmi=a.rmi, remove_orphans=a.remove_orphans,
                 timeout=a.timeout)


@subcommand("ps", "List containers",
            arg("-a", "--all", action="store_true", help="Show all stopped containers"),
            arg("-q", "--quiet", action="store_true", help="Only display IDs"),
            arg("--services", dest="list_services", action="store_true",
                help="Display services"),
            arg("--format", default="table", help="table or json"), SERVICES)
def ps(ctx: Ctx, a: argparse.Namespace) -> int:
    from . import _containers  # the docker-like commands' helpers, loaded when used

    project = ctx.project
    containers = ctx.cli.client.get("/containers/json", params={
        "all": True, "filters": L.project_filter(project.name, oneoff=None)})
    containers = [c for c in containers  # running ones unless -a, as Docker Compose
                  if (a.all or c.get("State") == "running")
                  and (not a.services or (c.get("Labels") or {}).get(L.SERVICE) in a.services)]
    containers.sort(key=lambda c: ((c.get("Labels") or {}).get(L.SERVICE, ""),
                                   L.number_of(c)))
    if a.quiet:
        for c in containers:
            ctx.cli.print(c["Id"])
        return 0
    if a.list_services:
        for svc in dict.fromkeys((c.get("Labels") or {}).get(L.SERVICE) for c in containers):
            ctx.cli.print(svc)
        return 0
    rows = [{"ID": c["Id"], "Name": compose.container_name(c), "Image": c.get("Image", ""),
             "Command": c.get("Command", ""),
             "Service": (c.get("Labels") or {}).get(L.SERVICE, ""),
             "State": c.get("State", ""), "Status": c.get("Status", ""),
             "Ports": _containers.display_ports(c.get("Ports") or [])} for c in containers]
    if a.format == "json":
        ctx.cli.print(json.dumps(rows))
        return 0
    table = [["NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS"]]
    table += [[r["Name"], r["Image"], json.dumps(r["Command"][:20]), r["Service"], r["Status"],
               r["Ports"]] for r in rows]
    sys.stdout.write(tabulate(table))
    return 0


@subcommand("ls", "List running compose projects",
            arg("-a", "--all", action="store_true", help="Show all stopped Compose projects"),
            arg("-q", "--quiet", action="store_true", help="Only display project names"),
            arg("--filter", action="append", default=[], help="name=REGEX"),
            arg("--format", default="table", choices=["table", "json"]))
def ls(ctx: Ctx, a: argparse.Namespace) -> int:
    """Projects from their containers' labels: no file is read."""
    projects = compose.projects
    patterns = projects.name_filter(a.filter)
    containers = ctx.cli.client.get("/containers/json", params={
        "all": a.all, "filters": projects.containers_filter()})
    found = projects.matching(projects.summarize(containers), patterns)
    if a.quiet:
        for p in found:
            ctx.cli.print(p.name)
    elif a.format == "json":
        ctx.cli.print(json.dumps([p.as_json() for p in found]))
    else:
        sys.stdout.write(tabulate([["NAME", "STATUS", "CONFIG FILES"]] +
                                  [[p.name, p.status, p.config_files] for p in found]))
    return 0


@subcommand("logs", "View output from containers",
            arg("-f", "--follow", action="store_true", help="Follow log output"),
            arg("-n", "--tail", default="all", help="Lines from the end of the logs"),
            arg("-t", "--timestamps", action="store_true"),
            arg("--no-color", action="store_true"),
            arg("--no-log-prefix", action="store_true"), SERVICES)
def logs(ctx: Ctx, a: argparse.Namespace) -> int:
    colour = ctx.colour and not a.no_color
    try:
        ctx.run(compose.follow, a.services or None, follow=a.follow, tail=a.tail,
                timestamps=a.timestamps, colour=colour, prefix=not a.no_log_prefix,
                progress="quiet")
    except KeyboardInterrupt:
        return 130
    return 0


def _find_container(ctx: Ctx, service: str, index: int) -> dict:
    project = ctx.project
    if service not in project.services:
        raise CommandError(f"no such service: {service}")
    containers = ctx.cli.client.get("/containers/json", params={
        "filters": L.project_filter(project.name, service=service)})
    for c in containers:
        if L.number_of(c) == index:
            return c
    raise CommandError(f"service {service!r} is not running container #{index}")


@subcommand("exec", "Execute a command in a running container",
            arg("-d", "--detach", action="store_true"),
            arg("-T", "--no-TTY", dest="no_tty", action="store_true",
                help="Disable pseudo-TTY allocation"),
            arg("-u", "--user", default=""), arg("-w", "--workdir", default=""),
            arg("-e", "--env", action="append", default=[]),
            arg("--privileged", action="store_true"),
            arg("--index", type=int, default=1), arg("service"), stop_after=1)
def exec_cmd(ctx: Ctx, a: argparse.Namespace) -> int:
    from . import _containers  # the docker-like commands' helpers, loaded when used

    if not a.cmd:
        raise CommandError("exec: a command is required")
    c = _find_container(ctx, a.service, a.index)
    tty = not a.no_tty and sys.stdin.isatty()
    ns = argparse.Namespace(detach=a.detach, interactive=not a.detach, tty=tty, user=a.user,
                            workdir=a.workdir, env=a.env, env_file=[], privileged=a.privileged,
                            container=c["Id"], cmd=a.cmd, detach_keys=None)
    return _containers.exec_(ctx.cli, ns)


@subcommand("run", "Run a one-off command on a service",
            arg("-d", "--detach", action="store_true"),
            arg("--rm", action="store_true", help="Remove the container when it exits"),
            arg("-T", "--no-TTY", dest="no_tty", action="store_true"),
            arg("-e", "--env", action="append", default=[]),
            arg("--name", default=None), arg("--entrypoint", default=None),
            arg("-u", "--user", default=None), arg("-w", "--workdir", default=None),
            arg("--no-deps", action="store_true"),
            arg("service"), stop_after=1)
def run(ctx: Ctx, a: argparse.Namespace) -> int:
    from . import _containers  # the docker-like commands' helpers, loaded when used

    tty = not a.no_tty and not a.detach and sys.stdin.isatty()
    opts = compose.RunOptions(service=a.service, command=a.cmd, name=a.name, tty=tty,
                              interactive=not a.detach, env=a.env, entrypoint=a.entrypoint,
                              user=a.user, workdir=a.workdir, auto_remove=a.rm,
                              no_deps=a.no_deps)
    cid = ctx.run(compose.create_oneoff, opts, progress="quiet" if not a.detach else None)
    if a.detach:
        ctx.cli.client.post(f"/containers/{cid}/start")
        ctx.cli.print(cid)
        return 0
    return _containers.attached_start(ctx.cli, cid, tty=tty, interactive=True, auto_remove=a.rm,
                                      run=True)


@subcommand("build", "Build or rebuild services",
            arg("--no-cache", action="store_true"), arg("--pull", action="store_true"),
            SERVICES)
def build(ctx: Ctx, a: argparse.Namespace) -> int:
    names = [n for n in ctx.project.select(a.services, with_deps=False)
             if ctx.project.services[n].build]

    def run(s: compose.Session) -> None:
        with tasks.TaskGroup() as nursery:
            for n in names:
                nursery.start_soon(lambda n=n: compose.build(s, s.project.services[n],
                                                             no_cache=a.no_cache, pull=a.pull))

    ctx.run(run)
    return 0


@subcommand("pull", "Pull service images",
            arg("--ignore-pull-failures", action="store_true"),
            arg("-q", "--quiet", action="store_true"), SERVICES)
def pull(ctx: Ctx, a: argparse.Namespace) -> int:
    names = [n for n in ctx.project.select(a.services, with_deps=False)
             if ctx.project.services[n].image]

    def run(s: compose.Session) -> None:
        with tasks.TaskGroup() as nursery:
            for n in names:
                nursery.start_soon(lambda n=n: compose.pull(
                    s, s.project.services[n], ignore_failures=a.ignore_pull_failures))

    ctx.run(run, progress="quiet" if a.quiet else None)
    return 0


@subcommand("push", "Push service images", arg("--ignore-push-failures", action="store_true"),
            SERVICES)
def push(ctx: Ctx, a: argparse.Namespace) -> int:
    names = ctx.project.select(a.services, with_deps=False)

    def run(s: compose.Session) -> None:
        for n in names:
            try:
                compose.push(s, s.project.services[n])
            except compose.ComposeError:
                if not a.ignore_push_failures:
                    raise

    ctx.run(run)
    return 0


@subcommand("start", "Start services", SERVICES)
def start(ctx: Ctx, a: argparse.Namespace) -> int:
    ctx.run(compose.start, a.services or None)
    return 0


@subcommand("stop", "Stop services", arg("-t", "--timeout", type=int, default=None), SERVICES)
def stop(ctx: Ctx, a: argparse.Namespace) -> int:
    ctx.run(compose.stop, a.services or None, a.timeout)
    return 0


@subcommand("restart", "Restart service containers",
            arg("-t", "--timeout", type=int, default=None), SERVICES)
def restart(ctx: Ctx, a: argparse.Namespace) -> int:
    ctx.run(compose.restart, a.services or None, a.timeout)
    return 0


@subcommand("kill", "Force stop service containers",
            arg("-s", "--signal", default="SIGKILL"), SERVICES)
def kill(ctx: Ctx, a: argparse.Namespace) -> int:
    ctx.run(compose.kill, a.services or None, a.signal)
    return 0


@subcommand("rm", "Remove stopped service containers",
            arg("-f", "--force", action="store_true", help="Don't ask to confirm removal"),
            arg("-s", "--stop", action="store_true", help="Stop the containers first"),
            arg("-v", "--volumes", action="store_true", help="Remove anonymous volumes"),
            SERVICES)
def rm(ctx: Ctx, a: argparse.Namespace) -> int:
    def run(s: compose.Session) -> None:
        gone = compose.rm(s, a.services or None, stop_first=a.stop, volumes=a.volumes)
        if not gone:
            s.warn("No stopped containers")

    ctx.run(run)
    return 0


def project_document(project: compose.Project) -> dict:
    """The resolved project as `config` prints it."""
    doc: dict[str, Any] = {"name": project.name, "services": {}}
    for name, svc in project.services.items():
        doc["services"][name] = {k: v for k, v in svc.config.items() if v not in ([], {}, None)}
    for key in ("networks", "volumes", "secrets", "configs"):
        items = getattr(project, key)
        if items:
            doc[key] = {k: dict(v, name=getattr(project, f"{key[:-1]}_name")(k))
                        if key in ("networks", "volumes") else v for k, v in items.items()}
    return doc


@subcommand("config", "Parse, resolve and render the compose file in canonical format",
            arg("-q", "--quiet", action="store_true", help="Only validate"),
            arg("--services", action="store_true"), arg("--volumes", action="store_true"),
            arg("--profiles", action="store_true"),
            arg("--format", default="yaml", choices=["yaml", "json"]))
def config(ctx: Ctx, a: argparse.Namespace) -> int:
    project = ctx.project
    if a.quiet:
        return 0
    if a.services:
        ctx.cli.print("\n".join(project.services))
        return 0
    if a.volumes:
        ctx.cli.print("\n".join(project.volumes))
        return 0
    if a.profiles:
        names = sorted({p for svc in list(project.services.values()) +
                        list(project.disabled.values())
                        for p in svc.config.get("profiles") or []})
        ctx.cli.print("\n".join(names))
        return 0
    doc = project_document(project)
    if a.format == "json":
        ctx.cli.print(json.dumps(doc, indent=2))
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return 0


@subcommand("top", "Display the running processes", SERVICES)
def top(ctx: Ctx, a: argparse.Namespace) -> int:
    project = ctx.project
    containers = ctx.cli.client.get("/containers/json", params={
        "filters": L.project_filter(project.name)})
    containers = [c for c in containers
                  if not a.services or (c.get("Labels") or {}).get(L.SERVICE) in a.services]
    for c in sorted(containers, key=compose.container_name):
        res = ctx.cli.client.get(f"/containers/{c['Id']}/top")
        ctx.cli.print(compose.container_name(c))
        rows = [res.get("Titles") or []] + [list(p) for p in res.get("Processes") or []]
        sys.stdout.write(tabulate(rows))
        ctx.cli.print()
    return 0


@subcommand("events", "Receive real time events from containers",
            arg("--json", action="store_true", help="Output events as a stream of json"),
            SERVICES)
def events(ctx: Ctx, a: argparse.Namespace) -> int:
    project = ctx.project
    filters = {"label": [f"{L.PROJECT}={project.name}"], "type": ["container"]}
    try:
        with ctx.cli.client.stream("GET", "/events",
                                   params={"filters": json.dumps(filters)}) as resp:
            for ev in iter_json_stream(resp.iter_raw()):
                attrs = (ev.get("Actor") or {}).get("Attributes") or {}
                service = attrs.get(L.SERVICE, "")
                if a.services and service not in a.services:
                    continue
                record = {"time": ev.get("time"), "type": ev.get("Type", "container"),
                          "action": ev.get("Action") or ev.get("status"),
                          "id": (ev.get("Actor") or {}).get("ID") or ev.get("id"),
                          "service": service,
                          "attributes": {k: v for k, v in attrs.items()
                                         if not k.startswith("com.docker.compose.")}}
                if a.json:
                    ctx.cli.print(json.dumps(record))
                else:
                    extra = ", ".join(f"{k}={v}" for k, v in sorted(record["attributes"].items()))
                    ctx.cli.print(f"{record['time']} container {record['action']} "
                                  f"{record['id']} ({extra})")
                sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    return 0


@subcommand("version", "Show the compose version")
def version(ctx: Ctx, a: argparse.Namespace) -> int:
    ctx.cli.print(f"pyengine compose version {L.COMPOSE_VERSION}")
    return 0
