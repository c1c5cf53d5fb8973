"""Foreground `up` (without -d), as Docker Compose v2 runs it: converge, then stream the
attached services' logs (containers started later too) until every watched container has
exited. --abort-on-container-exit (or -failure) stops the project at the first exit and
exits with that container's code; --exit-code-from SERVICE exits with that service's code.
SIGINT/SIGTERM stop the project gracefully; a second one kills it."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field

from . import labels as L
from . import tasks
from .errors import ComposeError
from .lifecycle import kill, stop
from .logs import LogPrinter, Prefixer, _stdout_write, display_name, started_at
from .monitor import EXITED, STARTED, Monitor
from .progress import make_progress
from .session import Session
from .up import UpOptions, up

IGNORE, STOP, FAIL = "ignore", "stop", "fail"  # what the first container exit does
INTERRUPTED = 130


@dataclass
class ForegroundOptions:
    attach: list[str] | None = None  # services whose logs are shown (None: every one)
    no_attach: list[str] = field(default_factory=list)
    attach_dependencies: bool = False
    cascade: str = IGNORE
    exit_code_from: str | None = None
    timeout: int | None = None  # stop timeout
    colour: bool = False
    prefix: bool = True
    timestamps: bool = False


def check(s: Session, up_opts: UpOptions, opts: ForegroundOptions) -> tuple[list[str], list[str]]:
    """Validate the options against the project; returns (attached, monitored) services:
    the named services (with their dependencies only with --attach-dependencies), or all;
    monitored are the named services, else the attached ones."""
    project = s.project
    if opts.exit_code_from and opts.exit_code_from not in project.services:
        raise ComposeError(f"no such service: {opts.exit_code_from}")
    selected = project.select(up_opts.services, with_deps=not up_opts.no_deps)
    if opts.attach:
        unknown = sorted(set(opts.attach) - set(selected))
        if unknown:
            raise ComposeError("cannot attach to services not included in up: "
                               + ", ".join(unknown))
        attached = list(opts.attach)
    else:
        base = up_opts.services if up_opts.services and not opts.attach_dependencies \
            else selected
        attached = [n for n in base if project.services[n].config.get("attach") is not False]
    attached = [n for n in attached if n not in opts.no_attach]
    return attached, list(up_opts.services) if up_opts.services else attached


def run(s: Session, up_opts: UpOptions, opts: ForegroundOptions,
        progress_mode: str = "auto") -> int:
    """`up` attached; returns the exit status."""
    attached, monitored = check(s, up_opts, opts)
    since = time.time()  # this run's output, not what earlier runs logged
    status = Status()
    with tasks.TaskGroup() as nursery:
        monitor = Monitor(s, monitored)
        with tasks.TaskGroup() as watching:
            monitor.open(watching)  # subscribed before anything starts
            ids = up(s, up_opts)
            s.progress.close()
            s.progress = make_progress("quiet" if progress_mode == "quiet" else "plain")
            run_ids = {i for v in ids.values() for i in v}
            containers = [c for c in s.containers() if c["Id"] in run_ids]
            containers.sort(key=lambda c: (_service(c), L.number_of(c)))
            shown = [c for c in containers if _service(c) in attached]
            names = {c["Id"]: display_name(s, c) for c in shown}
            print("Attaching to " + ", ".join(names.values()), flush=True)
            printer = LogPrinter(s, nursery,
                                 Prefixer(max([len(n) for n in names.values()] + [1]),
                                          opts.colour, opts.prefix),
                                 _stdout_write, opts.timestamps)
            for c in shown:
                printer.attach(c["Id"], names[c["Id"]], _service(c), follow=True, since=since)
            monitor.watch(containers)
            with tasks.signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                watching.start_soon(_on_signals, s, signals, up_opts, opts, status, nursery)
                for ev in monitor.events():
                    if ev.kind == STARTED and ev.service in attached and \
                            (ev.id not in printer.streams or ev.restarting):
                        since_ = started_at(s, ev.id) if ev.restarting else None
                        printer.attach(ev.id, ev.name, ev.service, follow=True, since=since_)
                    elif ev.kind == EXITED:
                        _on_exit(s, ev, opts, status, printer, nursery, up_opts)
            watching.cancel_scope.cancel()
    return INTERRUPTED if status.interrupted else status.code


def _service(c: dict) -> str:
    return (c.get("Labels") or {}).get(L.SERVICE, "")


@dataclass
class Status:
    code: int = 0
    aborted: bool = False
    code_captured: bool = False
    interrupted: int = 0  # signals received


def _on_exit(s: Session, ev, opts: ForegroundOptions, status: Status, printer: LogPrinter,
             nursery: tasks.TaskGroup, up_opts: UpOptions) -> None:
    if ev.id in printer.streams:
        nursery.start_soon(printer.announce_exit, ev.id, ev.name, ev.exit_code)
    if opts.cascade != IGNORE and not status.aborted and not status.interrupted and \
            not (opts.cascade == FAIL and ev.exit_code == 0):
        status.aborted = True
        status.code = ev.exit_code
        print("Aborting on container exit...", file=sys.stderr, flush=True)
        nursery.start_soon(stop, s, up_opts.services or None, opts.timeout)
    if opts.exit_code_from and ev.service == opts.exit_code_from and not status.code_captured:
        status.code_captured = True
        status.code = ev.exit_code


def _on_signals(s: Session, signals, up_opts: UpOptions, opts: ForegroundOptions,
                      status: Status, nursery: tasks.TaskGroup) -> None:
    while True:
        tasks.receive(signals)
        status.interrupted += 1
        if status.interrupted == 1:
            print("Gracefully stopping... (press Ctrl+C again to force)", file=sys.stderr,
                  flush=True)
            nursery.start_soon(stop, s, up_opts.services or None, opts.timeout)
        else:
            nursery.start_soon(_kill, s, up_opts.services or None)


def _kill(s: Session, services: list[str] | None) -> None:
    try:
        kill(s, services, "SIGKILL")
    except ComposeError:
        pass  # already stopped or removed meanwhile: what was wanted
