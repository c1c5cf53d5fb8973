"""`down`, `start`, `stop`, `restart`, `kill`, `rm`: over the project's containers, found by
label, in dependency order (stopping dependents before what they depend on)."""

from __future__ import annotations

from typing import Callable


from engine.cli import ClientError

from . import containers as ctr
from . import labels as L
from . import planner
from . import tasks
from .errors import ComposeError
from .image_removal import MODES, remove_images
from .resources import remove_networks, remove_volumes
from .session import Session, container_name


def _service_of(c: dict) -> str:
    return (c.get("Labels") or {}).get(L.SERVICE, "")


def _levels(s: Session, containers: list[dict]) -> list[list[dict]]:
    """Containers grouped by start level (known services), unknown services last-started."""
    project = s.project
    levels = planner.start_order(project, list(project.services))
    out: list[list[dict]] = [[c for c in containers if _service_of(c) in level]
                             for level in levels]
    out.append([c for c in containers if _service_of(c) not in project.services])
    return [lvl for lvl in out if lvl]


def _filter(containers: list[dict], services: list[str] | None) -> list[dict]:
    if not services:
        return containers
    return [c for c in containers if _service_of(c) in services]


def down(s: Session, *, volumes: bool = False, rmi: str | None = None,
         remove_orphans: bool = False, timeout: int | None = None) -> None:
    if rmi and rmi not in MODES:  # before anything is touched
        raise ComposeError(f"invalid value for --rmi: {rmi!r}")
    project = s.project
    everything = s.containers(oneoff=None)
    known = set(project.services) | set(project.disabled)
    file_less = not project.config_files  # `-p NAME down`: everything labelled is the project's
    orphans = [] if file_less else [c for c in everything if _service_of(c) not in known]
    targets = [c for c in everything if c not in orphans or remove_orphans]
    if orphans and not remove_orphans:
        s.warn("Found orphan containers (" +
               ", ".join(sorted(container_name(c) for c in orphans)) +
               ") for this project; run with --remove-orphans to clean them up.")
    stop_in_reverse_order(
        s, targets, timeout, then=lambda c: ctr.remove(s, c, volumes=volumes))
    if orphans and not remove_orphans:
        return  # networks are still in use
    remove_networks(s)
    if volumes:
        remove_volumes(s)
    if rmi:
        remove_images(s, rmi, remove_orphans)


def start(s: Session, services: list[str] | None) -> None:
    containers = _filter(s.containers(), services)
    if not containers:
        raise ComposeError("no containers to start")
    for level in _levels(s, containers):
        with tasks.TaskGroup() as nursery:
            for c in level:
                if c.get("State") != "running":
                    nursery.start_soon(ctr.start, s, c["Id"], container_name(c))


def stop(s: Session, services: list[str] | None, timeout: int | None = None) -> None:
    stop_in_reverse_order(s, _filter(s.containers(), services), timeout)


def stop_in_reverse_order(s: Session, containers: list[dict], timeout: int | None,
                                then: Callable[[dict], None] | None = None) -> None:
    """Stop dependents before what they depend on: each service's containers concurrently,
    as soon as every service depending on it has stopped (containers of services the files
    do not know, first); `then(c)` (down's remove) follows each service's stop without
    holding up the next ones."""
    project = s.project
    groups: dict[str, list[dict]] = {}
    for c in containers:
        groups.setdefault(_service_of(c), []).append(c)
    stopped = {name: tasks.Event() for name in groups}
    unknown = [n for n in groups if n not in project.services]

    def dependents(name: str) -> list[str]:
        if name not in project.services:
            return []
        return unknown + [n for n in groups if n in project.services
                          and name in project.services[n].depends_on]

    def one(name: str, nursery: tasks.TaskGroup) -> None:
        for other in dependents(name):
            stopped[other].wait()
        svc = project.services.get(name)
        ctr.for_each(groups[name], lambda c: ctr.stop(s, c, svc, timeout))
        stopped[name].set()
        if then is not None:
            for c in groups[name]:
                nursery.start_soon(then, c)

    with tasks.TaskGroup() as nursery:
        for name in groups:
            nursery.start_soon(one, name, nursery)


def restart(s: Session, services: list[str] | None, timeout: int | None = None) -> None:
    containers = _filter(s.containers(), services)

    def one(c: dict) -> None:
        name = container_name(c)
        s.progress.update("Container", name, "Restarting")
        params = {"t": timeout} if timeout is not None else None
        try:
            s.api.post(f"/containers/{c['Id']}/restart", params=params)
        except ClientError as exc:
            s.progress.update("Container", name, "Error", error=True)
            raise ComposeError(f"restarting {name}: {exc.message}") from None
        s.progress.update("Container", name, "Started", done=True)

    for level in _levels(s, containers):
        ctr.for_each(level, one)


def kill(s: Session, services: list[str] | None, signal: str = "SIGKILL") -> None:
    containers = [c for c in _filter(s.containers(), services)
                  if c.get("State") == "running"]

    def one(c: dict) -> None:
        name = container_name(c)
        s.progress.update("Container", name, "Killing")
        try:
            s.api.post(f"/containers/{c['Id']}/kill", params={"signal": signal})
        except ClientError as exc:
            s.progress.update("Container", name, "Error", error=True)
            raise ComposeError(f"killing {name}: {exc.message}") from None
        s.progress.update("Container", name, "Killed", done=True)

    ctr.for_each(containers, one)


def rm(s: Session, services: list[str] | None, *, stop_first: bool = False,
       volumes: bool = False) -> list[dict]:
    """Remove stopped containers (running ones too with stop_first); returns the removed."""
    containers = _filter(s.containers(oneoff=None), services)
    if stop_first:
        stop(s, services)
        containers = _filter(s.containers(oneoff=None), services)
    gone = [c for c in containers if c.get("State") != "running"]
    ctr.for_each(gone, lambda c: ctr.remove(s, c, volumes=volumes))
    return gone
