"""`up`: networks, volumes and images first (concurrently), then every service as soon as
its dependencies' conditions hold — all services in one task group, each waiting on the
events of the services it depends on. A failure cancels the rest and is reported once."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.cli import ClientError

from . import containers as ctr
from . import injection
from . import planner
from . import tasks
from .errors import ComposeError
from .images import ensure_images
from .model import Dependency
from .resources import ensure_resources
from .session import Session, container_name

POLL = 0.1  # seconds between health checks of a dependency


@dataclass
class UpOptions:
    services: list[str] = field(default_factory=list)
    scale: dict[str, int] = field(default_factory=dict)
    build: bool = False
    pull: str | None = None  # pull policy override
    force_recreate: bool = False
    no_recreate: bool = False
    no_deps: bool = False
    remove_orphans: bool = False
    wait: bool = False
    wait_timeout: float | None = None
    no_start: bool = False


def up(s: Session, opts: UpOptions) -> dict[str, list[str]]:
    """Converge the project; returns service -> ids of its containers."""
    project = s.project
    for name, n in opts.scale.items():
        if name not in project.services:
            raise ComposeError(f"--scale: no such service: {name}")
        if n > 1 and project.services[name].config.get("container_name"):
            raise ComposeError(f"service {name} has a container_name and cannot be scaled")
    selected = project.select(opts.services, with_deps=not opts.no_deps)
    injection.check(project, selected)
    existing: list[dict] = []
    image_ids: dict[str, str] = {}

    def containers() -> None:
        existing.extend(s.containers())

    def images() -> None:
        image_ids.update(ensure_images(s, selected, build_all=opts.build,
                                       pull_policy=opts.pull))

    with tasks.TaskGroup() as nursery:
        nursery.start_soon(containers)
        nursery.start_soon(ensure_resources, s, selected)
        nursery.start_soon(images)
    orphans = planner.orphans(project, existing)
    if orphans and opts.remove_orphans:
        ctr.for_each(orphans, lambda c: ctr.stop_and_remove(s, c, None))
    if orphans and not opts.remove_orphans:
        names = ", ".join(sorted(container_name(c) for c in orphans))
        s.warn(f"Found orphan containers ({names}) for this project. If you removed or "
               "renamed this service in your compose file, you can run this command with "
               "the --remove-orphans flag to clean it up.")
    groups = planner.by_service([c for c in existing if c not in orphans])
    plans = {}
    for name in selected:
        svc = project.services[name]
        plans[name] = planner.plan_service(
            svc, groups.get(name, []), opts.scale.get(name, svc.scale),
            force_recreate=opts.force_recreate, no_recreate=opts.no_recreate,
            image_id=image_ids.get(name))
    ids = converge(s, selected, plans, image_ids, start=not opts.no_start)
    if opts.wait:
        with tasks.CancelScope(timeout=opts.wait_timeout or None) as scope:
            wait_ready(s, selected, ids)
        if scope.cancelled_caught:
            raise ComposeError("timed out waiting for services to be running/healthy")
    return ids


def converge(s: Session, selected: list[str], plans: dict[str, list[planner.Action]],
             image_ids: dict[str, str], *, start: bool = True) -> dict[str, list[str]]:
    """As Docker Compose: every service's containers are created (recreated, scaled) in
    dependency order, then started once the conditions on its dependencies hold. Creating
    waits only for the dependencies' creation, so creates overlap the starts before them."""
    project = s.project
    created = {name: tasks.Event() for name in selected}
    ready = {name: tasks.Event() for name in selected}
    ids: dict[str, list[str]] = {}

    def service_task(name: str) -> None:
        # dependencies not part of this run (--no-deps, or not required) are not waited for
        deps = [d for d in project.services[name].depends_on.values() if d.service in ready]
        for dep in deps:
            created[dep.service].wait()
        ids[name], pending = create_service(s, name, plans[name], image_ids.get(name),
                                            ids)
        created[name].set()
        if start:
            for dep in deps:
                ready[dep.service].wait()
                wait_condition(s, dep, ids.get(dep.service, []))
            ctr.for_each(pending, lambda p: ctr.start(s, *p))
        ready[name].set()

    with tasks.TaskGroup() as nursery:
        for name in selected:
            nursery.start_soon(service_task, name)
    return ids


def create_service(s: Session, name: str, actions: list[planner.Action],
                   image_id: str | None, ids: dict[str, list[str]]
                   ) -> tuple[list[str], list[tuple[str, str]]]:
    """Carry out one service's actions but the starts (its replicas concurrently); returns
    its containers and the (id, name) of those to start."""
    svc = s.project.services[name]
    result: dict[int, str] = {}
    pending: dict[int, tuple[str, str]] = {}
    service_containers = {k: v[0] for k, v in ids.items() if v}

    def one(action: planner.Action) -> None:
        kind = action.kind
        if kind == planner.REMOVE:
            ctr.stop_and_remove(s, action.container, svc)
            return
        if kind in (planner.CREATE, planner.RECREATE):
            if kind == planner.RECREATE:
                cid = ctr.replace(s, svc, action.container, action.number,
                                  image_id=image_id,
                                  service_containers=service_containers)
            else:
                cid = ctr.create(s, svc, action.number, image_id=image_id,
                                 service_containers=service_containers)
            pending[action.number] = (cid, s.project.container_name(svc, action.number))
        else:
            cid = action.container_id
            if kind == planner.START:
                pending[action.number] = (cid, container_name(action.container))
            elif kind == planner.KEEP:
                s.progress.update("Container", container_name(action.container), "Running",
                                  done=True)
        result[action.number] = cid

    with tasks.TaskGroup() as nursery:
        for action in actions:
            nursery.start_soon(one, action)
    return [result[n] for n in sorted(result)], [pending[n] for n in sorted(pending)]


def wait_condition(s: Session, dep: Dependency, cids: list[str]) -> None:
    if dep.condition == "service_started" or not cids:
        return
    with tasks.TaskGroup() as nursery:
        for cid in cids:
            if dep.condition == "service_healthy":
                nursery.start_soon(wait_healthy, s, dep.service, cid)
            else:
                nursery.start_soon(wait_completed, s, dep.service, cid)


def wait_healthy(s: Session, service: str, cid: str) -> None:
    waiting = False
    while True:
        info = s.api.get(f"/containers/{cid}/json")
        name = info["Name"].lstrip("/")
        state = info.get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        if health is None and not (info.get("Config") or {}).get("Healthcheck"):
            raise ComposeError(f"dependency failed to start: container {name} has no "
                               "healthcheck configured")
        if health == "healthy":
            if waiting:
                s.progress.update("Container", name, "Healthy", done=True)
            return
        if health == "unhealthy":
            s.progress.update("Container", name, "Error", error=True)
            raise ComposeError(f"dependency failed to start: container {name} is unhealthy")
        if state.get("Status") in ("exited", "dead"):
            raise ComposeError(f"dependency failed to start: container {name} exited "
                               f"({state.get('ExitCode')})")
        if not waiting:
            s.progress.update("Container", name, "Waiting")
            waiting = True
        tasks.sleep(POLL)


def wait_completed(s: Session, service: str, cid: str) -> None:
    try:
        code = s.api.wait(cid)
    except ClientError as exc:
        raise ComposeError(f"waiting for {service}: {exc.message}") from None
    if code != 0:
        raise ComposeError(f"service {service!r} didn't complete successfully: exit {code}")


def wait_ready(s: Session, services: list[str], ids: dict[str, list[str]]) -> None:
    """--wait: every container running, and healthy when it has a healthcheck."""
    def one(service: str, cid: str) -> None:
        while True:
            info = s.api.get(f"/containers/{cid}/json")
            state = info.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") in ("exited", "dead"):
                if state.get("ExitCode") == 0 and not state.get("Restarting"):
                    return
                raise ComposeError(f"container {info['Name'].lstrip('/')} exited "
                                   f"({state.get('ExitCode')})")
            if health == "unhealthy":
                raise ComposeError(f"container {info['Name'].lstrip('/')} is unhealthy")
            if state.get("Running") and health in (None, "healthy"):
                return
            tasks.sleep(POLL)

    with tasks.TaskGroup() as nursery:
        for service in services:
            for cid in ids.get(service, []):
                nursery.start_soon(one, service, cid)
