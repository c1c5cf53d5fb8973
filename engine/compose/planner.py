"""What `up` must do for each service, from the project and the containers the daemon has
(pure: no I/O). A container is kept when its config-hash label and image match, started when
it is stopped, recreated when outdated; replicas beyond the scale are removed (highest
numbers first), missing ones created with the next numbers."""

from __future__ import annotations

from dataclasses import dataclass

from . import labels as L
from .model import Project, Service

CREATE, RECREATE, START, KEEP, REMOVE = "create", "recreate", "start", "keep", "remove"


@dataclass(frozen=True)
class Action:
    kind: str
    service: str
    number: int
    container: dict | None = None  # the daemon's summary (GET /containers/json)

    @property
    def container_id(self) -> str | None:
        return self.container["Id"] if self.container else None


def by_service(containers: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in containers:
        service = (c.get("Labels") or {}).get(L.SERVICE)
        if service:
            out.setdefault(service, []).append(c)
    for items in out.values():
        items.sort(key=L.number_of)
    return out


def plan_service(service: Service, containers: list[dict], scale: int, *,
                 force_recreate: bool = False, no_recreate: bool = False,
                 image_id: str | None = None) -> list[Action]:
    actions: list[Action] = []
    current = sorted(containers, key=L.number_of)
    # running replicas are the ones to keep when scaling down
    keep = sorted(sorted(current, key=lambda c: c.get("State") != "running")[:scale],
                  key=L.number_of)
    for c in current:
        if c not in keep:
            actions.append(Action(REMOVE, service.name, L.number_of(c), c))
    for c in keep:
        number = L.number_of(c)
        labels = c.get("Labels") or {}
        outdated = (labels.get(L.CONFIG_HASH) != service.config_hash or
                    (image_id is not None and c.get("ImageID") not in (None, image_id)))
        if not no_recreate and (force_recreate or outdated):
            actions.append(Action(RECREATE, service.name, number, c))
        elif c.get("State") != "running":
            actions.append(Action(START, service.name, number, c))
        else:
            actions.append(Action(KEEP, service.name, number, c))
    next_number = max([L.number_of(c) for c in current] + [0]) + 1
    for _ in range(scale - len(keep)):
        actions.append(Action(CREATE, service.name, next_number))
        next_number += 1
    return actions


def orphans(project: Project, containers: list[dict]) -> list[dict]:
    """Containers labelled with the project whose service is no longer in its files."""
    known = set(project.services) | set(project.disabled)
    return [c for c in containers
            if (c.get("Labels") or {}).get(L.SERVICE) not in known]


def start_order(project: Project, names: list[str]) -> list[list[str]]:
    """The services in levels: each level depends only on earlier ones (for display and for
    stopping in reverse)."""
    remaining = list(names)
    levels: list[list[str]] = []
    placed: set[str] = set()
    while remaining:
        level = [n for n in remaining
                 if all(d in placed or d not in names
                        for d in project.services[n].depends_on)]
        if not level:  # a cycle: the loader refuses those, keep going anyway
            level = remaining[:]
        levels.append(level)
        placed.update(level)
        remaining = [n for n in remaining if n not in placed]
    return levels
