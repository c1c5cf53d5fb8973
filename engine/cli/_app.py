"""Command registry, argument splitting and the `main` entry point of the pyengine CLI.

Each command module declares its commands with `@command(name, help, arg(...), …)`; a
command is a function `(cli, args) -> int | None`. Commands that take a trailing command line
(`run IMAGE CMD…`, `exec CONTAINER CMD…`, `top CONTAINER ARGS…`) set `stop_after`: option
parsing stops after that many positionals, like docker's interspersed=false.
"""

from __future__ import annotations

import argparse
import os
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from engine import API_VERSION, __version__
from engine.config import default_host

from ._client import Client, ClientError


class UsageError(Exception):
    def __init__(self, message: str, prog: str):
        super().__init__(message)
        self.prog = prog


class CommandError(Exception):
    """A failure to report as one line on stderr with the given exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, self.prog)


def arg(*flags: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, kw


@dataclass
class Command:
    name: str
    help: str
    handler: Callable[["Cli", argparse.Namespace], int | None]
    args: list = field(default_factory=list)
    stop_after: int | None = None  # positionals before the trailing command line
    rest: str = "cmd"  # where the trailing command line goes
    usage: str | None = None

    def parser(self) -> _Parser:
        p = _Parser(prog=f"pyengine {self.name}", description=self.help, add_help=False,
                    usage=self.usage)
        p.add_argument("--help", action="help", help="Print usage")
        for flags, kw in self.args:
            p.add_argument(*flags, **kw)
        return p


REGISTRY: dict[str, Command] = {}
# "container ls" -> ("ps", {}) ; "image inspect" -> ("inspect", {"type": "image"})
ALIASES: dict[str, tuple[str, list[str]]] = {}


def command(name: str, help: str, *args: Any, stop_after: int | None = None, rest: str = "cmd",
            usage: str | None = None, aliases: tuple[str, ...] = ()):
    def deco(fn: Callable) -> Callable:
        REGISTRY[name] = Command(name, help, fn, list(args), stop_after, rest, usage)
        for a in aliases:
            ALIASES[a] = (name, [])
        return fn

    return deco


def alias(name: str, target: str, *extra: str) -> None:
    ALIASES[name] = (target, list(extra))


def key_values(items: list[str], flag: str) -> dict[str, str]:
    """Repeated `--flag k=v` options as a dict (docker's error for an empty key)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise CommandError(f"invalid argument \"{item}\" for \"{flag}\" flag", 125)
        out[key] = value
    return out


class Cli:
    """What a command gets: the host, a lazily built API client and the output streams."""

    stdin_fd = 0  # what `-i` forwards (tests point it at a pipe)

    def __init__(self, host: str, debug: bool = False):
        self.host = host
        self.debug = debug
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            try:
                self._client = Client(self.host)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def out(self):
        return sys.stdout

    @property
    def err(self):
        return sys.stderr

    def print(self, text: str = "", end: str = "\n") -> None:
        sys.stdout.write(text + end)

    def print_deleted(self, kind: str, items: list) -> None:
        """A prune's "Deleted <kind>:" section, then a blank line; nothing when none was.
        Images' items are {"Untagged"|"Deleted": ref} and show as "untagged: ref"."""
        if not items:
            return
        self.print(f"Deleted {kind}:")
        for item in items:
            if isinstance(item, dict):
                for key in ("Untagged", "Deleted"):
                    if item.get(key):
                        self.print(f"{key.lower()}: {item[key]}")
            else:
                self.print(item)
        self.print()

    def warn(self, text: str) -> None:
        sys.stdout.flush()
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def print_objects(self, objects: list, template: str | None) -> None:
        """`inspect` output: a Go template per object, or the JSON array docker prints."""
        from ._format import TemplateError, render

        if template:
            try:
                for obj in objects:
                    self.print(render(template.replace("\\n", "\n").replace("\\t", "\t"), obj))
            except TemplateError as exc:
                raise CommandError(f"template parsing error: {exc}") from None
        else:
            self.print(json.dumps(objects, indent=4, ensure_ascii=False))

    def inspect_each(self, names: list[str], path: str, kind: str, template: str | None) -> int:
        """GET path.format(name) for each name; docker's "No such <kind>" for missing ones."""
        from ._client import ClientError

        found, missing = [], False
        for name in names:
            try:
                found.append(self.client.get(path.format(name)))
            except ClientError as exc:
                if not exc.not_found:
                    raise
                missing = True
                self.warn(f"Error: No such {kind}: {name}")
        self.print_objects(found, template)
        return 1 if missing else 0

    def remove_each(self, names: list[str], path: str, params: dict | None = None,
                    missing_ok: bool = False) -> int:
        """DELETE path.format(name) for each name, printing the removed ones; exit 1 if any
        failed (docker's `network rm` / `volume rm`)."""
        from ._client import ClientError

        status = 0
        for name in names:
            try:
                self.client.delete(path.format(name), params=params)
                self.print(name)
            except ClientError as exc:
                if missing_ok and exc.not_found:
                    continue
                self.warn(str(exc))
                status = 1
        return status

    def write_bytes(self, data: bytes, stream: int = 1) -> None:
        f = sys.stdout if stream == 1 else sys.stderr
        f.flush()
        buf = getattr(f, "buffer", None)
        if buf is not None:
            buf.write(data)
            buf.flush()
        else:
            f.write(data.decode("utf-8", "replace"))
            f.flush()


# ---------------------------------------------------------------------------------------------
# argument splitting


def _option_arity(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """option string -> whether it takes a value."""
    out = {}
    for action in parser._actions:
        takes = action.nargs != 0
        for s in action.option_strings:
            out[s] = takes
    return out


def split_argv(parser: argparse.ArgumentParser, argv: list[str],
               npos: int) -> tuple[list[str], list[str]]:
    """Split argv into (options and the first `npos` positionals, trailing command line)."""
    arity = _option_arity(parser)
    head: list[str] = []
    seen = 0
    i = 0
    while i < len(argv):
        tok = argv[i]
        if seen >= npos:
            return head, argv[i:]
        if tok == "--":
            rest = argv[i + 1 :]
            need = npos - seen
            return head + rest[:need], rest[need:]
        if tok.startswith("--") and len(tok) > 2:
            head.append(tok)
            name = tok.split("=", 1)[0]
            if "=" not in tok and arity.get(name, False) and i + 1 < len(argv):
                head.append(argv[i + 1])
                i += 1
        elif tok.startswith("-") and len(tok) > 1:
            head.append(tok)
            # combined short flags: -it, -dit, -p8080:80, -e A=1
            for j in range(1, len(tok)):
                opt = "-" + tok[j]
                if arity.get(opt, False):
                    if j == len(tok) - 1 and i + 1 < len(argv):
                        head.append(argv[i + 1])
                        i += 1
                    break
        else:
            head.append(tok)
            seen += 1
        i += 1
    return head, []


def _split_global(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    opts: dict[str, Any] = {"host": None, "debug": False, "version": False, "help": False}
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in ("-H", "--host"):
            if i + 1 >= len(argv):
                raise UsageError(f"flag needs an argument: {tok}", "pyengine")
            opts["host"] = argv[i + 1]
            i += 2
        elif tok.startswith("--host="):
            opts["host"] = tok.split("=", 1)[1]
            i += 1
        elif tok.startswith("-H") and len(tok) > 2:
            opts["host"] = tok[2:]
            i += 1
        elif tok in ("-D", "--debug"):
            opts["debug"] = True
            i += 1
        elif tok in ("-v", "--version"):
            opts["version"] = True
            i += 1
        elif tok in ("-h", "--help"):
            opts["help"] = True
            i += 1
        elif tok in ("-l", "--log-level", "-c", "--context", "--config"):
            i += 2
        elif tok.startswith("-"):
            raise UsageError(f"unknown flag: {tok}", "pyengine")
        else:
            break
    return opts, argv[i:]


def _usage() -> str:
    lines = ["Usage:  pyengine [OPTIONS] COMMAND", "",
             "A Docker-compatible container engine client", "", "Options:",
             "  -H, --host string   Daemon socket to connect to (env PYENGINE_HOST)",
             "  -D, --debug         Enable debug mode",
             "  -v, --version       Print version information and quit", "", "Commands:"]
    names = {n.split()[0]: REGISTRY[n].help for n in REGISTRY if " " not in n}
    names.update(GROUPS)
    for name in sorted(names):
        lines.append(f"  {name:<12}{names[name]}")
    lines += ["", "Run 'pyengine COMMAND --help' for more information on a command."]
    return "\n".join(lines)


#: Management commands: each of their commands is a command or an alias named "<group> <name>".
GROUPS = {"container": "Manage containers", "image": "Manage images", "network": "Manage networks",
          "system": "Manage pyengine", "volume": "Manage volumes"}


def _group_usage(group: str) -> str:
    """`pyengine container` (or `… --help`): the group's commands, one name each (`ls`, not
    also its aliases `list` and `ps`), as the docker CLI lists them."""
    names: dict[str, list[str]] = {}  # target command -> its names in the group
    for name in [*REGISTRY, *ALIASES]:
        head, _, sub = name.partition(" ")
        if head == group and sub and " " not in sub:
            names.setdefault(name if name in REGISTRY else ALIASES[name][0], []).append(sub)
    shown = {}
    for target, subs in names.items():
        preferred = ["ls"] * ("ls" in subs) + [s for s in subs if s == target.split()[-1]] + ["rm"] * ("rm" in subs)
        shown[(preferred or sorted(subs))[0]] = REGISTRY[target].help
    lines = [f"Usage:  pyengine {group} COMMAND", "", GROUPS[group], "", "Commands:"]
    lines += [f"  {sub:<12}{text}" for sub, text in sorted(shown.items())]
    lines += ["", f"Run 'pyengine {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines)


def _resolve(rest: list[str]) -> tuple[Command | None, list[str], str]:
    if len(rest) >= 2 and f"{rest[0]} {rest[1]}" in ALIASES:
        target, extra = ALIASES[f"{rest[0]} {rest[1]}"]
        return REGISTRY[target], extra + rest[2:], f"{rest[0]} {rest[1]}"
    if len(rest) >= 2 and f"{rest[0]} {rest[1]}" in REGISTRY:
        return REGISTRY[f"{rest[0]} {rest[1]}"], rest[2:], f"{rest[0]} {rest[1]}"
    if rest[0] in REGISTRY:
        return REGISTRY[rest[0]], rest[1:], rest[0]
    if rest[0] in ALIASES:
        target, extra = ALIASES[rest[0]]
        return REGISTRY[target], extra + rest[1:], rest[0]
    return None, rest, rest[0]


COMMAND_MODULES = ("_containers", "_container_admin", "_copy", "_events", "_images", "_system", "_build", "_compose",
                   "_networks", "_volumes")


def _load_commands(first: list[str]) -> None:
    """Import the command modules (each registers its commands): for `compose`, only its
    own — it is run many times in a row, and every command pays its process's imports."""
    import importlib

    for name in ("_compose",) if first == ["compose"] else COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script passes it to sys.exit).
    A reader that went away (`pyengine --help | head -1`) ends it quietly, as with docker."""
    try:
        return _run(argv)
    except BrokenPipeError:
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's flush at exit does not fail again
    on the closed pipe (the pattern Python's signal documentation gives)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        gopts, rest = _split_global(argv)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\nSee 'pyengine --help'.\n")
        return 125
    _load_commands(rest[:1])
    if gopts["version"]:
        print(f"pyengine version {__version__}, API {API_VERSION}")
        return 0
    if not rest or rest[0] == "help" or gopts["help"] and not rest:
        print(_usage())
        return 0
    if rest[0] in GROUPS and (len(rest) == 1 or rest[1] in ("--help", "-h", "help")):
        print(_group_usage(rest[0]))
        return 0
    cmd, cmd_argv, used = _resolve(rest)
    if cmd is None and rest[0] in GROUPS:
        sys.stderr.write(f"pyengine: unknown command: pyengine {rest[0]} {rest[1]}\n\n"
                         f"Run 'pyengine {rest[0]} --help' for more information\n")
        return 1
    if cmd is None:
        sys.stderr.write(f"pyengine: '{rest[0]}' is not a pyengine command.\n"
                         f"See 'pyengine --help'\n")
        return 1
    parser = cmd.parser()
    try:
        if cmd.stop_after is not None:
            head, tail = split_argv(parser, cmd_argv, cmd.stop_after)
            args = parser.parse_args(head)
            setattr(args, cmd.rest, tail)
        else:
            args = parser.parse_args(cmd_argv)
    except UsageError as exc:
        sys.stderr.write(f"pyengine {used}: {exc}\nSee 'pyengine {used} --help'.\n")
        return 125
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    cli = Cli(gopts["host"] or default_host(), debug=gopts["debug"])
    try:
        status = cmd.handler(cli, args)
        return int(status or 0)
    except CommandError as exc:
        sys.stdout.flush()
        if str(exc):
            sys.stderr.write(f"{exc}\n")
        return exc.status
    except ClientError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"{exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        cli.close()
