"""One container's lifecycle steps as `up`/`down`/`start`… run them, with progress rows."""

from __future__ import annotations


from engine.cli import ClientError

from . import containerspec, injection, tasks
from .errors import ComposeError
from .model import Service
from .session import Session, container_name


def _stop_timeout(svc: Service | None, timeout: int | None) -> int | None:
    if timeout is not None:
        return timeout
    if svc is not None and svc.config.get("stop_grace_period") is not None:
        from .units import parse_duration_ns

        return round(parse_duration_ns(svc.config["stop_grace_period"], "stop_grace_period")
                     / 1e9)
    return None


def anonymous_volumes(svc: Service, summary: dict) -> dict[str, str]:
    """target -> volume name of the anonymous volumes a container of svc has (what a
    recreated container takes over, so their data survives the recreate)."""
    wanted = {v["target"] for v in svc.config["volumes"]
              if v["type"] == "volume" and not v.get("source")}
    return {m["Destination"]: m["Name"] for m in summary.get("Mounts") or []
            if m.get("Type") == "volume" and m.get("Destination") in wanted and m.get("Name")}


def create(s: Session, svc: Service, number: int, *, image_id: str | None = None,
           service_containers: dict[str, str] | None = None,
           inherit: dict[str, str] | None = None, temporary_name: str | None = None) -> str:
    """Create replica `number` and connect it to the service's other networks; `inherit`
    (target -> volume) reuses a previous container's anonymous volumes; `temporary_name`
    for a replacement made while the container it replaces still holds the name."""
    project, api = s.project, s.api
    name = project.container_name(svc, number)
    s.progress.update("Container", name, "Creating")
    body = containerspec.create_body(project, svc, number, image_id=image_id,
                                     service_containers=service_containers)
    if inherit:
        host = body["HostConfig"]
        host["Mounts"] = [m for m in host.get("Mounts") or [] if m["Target"] not in inherit]
        host["Binds"] = host["Binds"] + [f"{vol}:{target}:rw" for target, vol in inherit.items()]
    try:
        res = api.post("/containers/create", body,
                       params={"name": temporary_name or name})
        cid = res["Id"]
        for key in list(svc.networks)[1:]:
            api.post(f"/networks/{project.network_name(key)}/connect",
                     {"Container": cid,
                      "EndpointConfig": containerspec.endpoint_config(project, svc, key,
                                                                      number)})
    except ClientError as exc:
        s.progress.update("Container", name, "Error", error=True)
        raise ComposeError(f"creating container {name}: {exc.message}") from None
    injection.inject(s, svc, cid)
    s.progress.update("Container", name, "Created")
    return cid


def replace(s: Session, svc: Service, old: dict, number: int, *,
            image_id: str | None, service_containers: dict[str, str]) -> str:
    """Recreate as Docker Compose does: the replacement is created first (under a temporary
    name, taking over the old one's anonymous volumes), then the old container is stopped and
    removed and the replacement renamed; so the project never lacks that container (what
    `logs -f` and a foreground `up` follow)."""
    name = s.project.container_name(svc, number)
    cid = create(s, svc, number, image_id=image_id, service_containers=service_containers,
                 inherit=anonymous_volumes(svc, old),
                 temporary_name=f"{old['Id'][:12]}_{name}")
    try:
        stop_and_remove(s, old, svc)
        s.api.post(f"/containers/{cid}/rename", params={"name": name})
    except BaseException as exc:
        with tasks.CancelScope(shield=True):  # no half-done replacement is left behind
            try:
                s.api.delete(f"/containers/{cid}", params={"force": True})
            except ClientError:
                pass
        if isinstance(exc, ClientError):
            raise ComposeError(f"renaming container {name}: {exc.message}") from None
        raise
    return cid


def start(s: Session, cid: str, name: str) -> None:
    s.progress.update("Container", name, "Starting")
    try:
        s.api.post(f"/containers/{cid}/start")
    except ClientError as exc:
        if exc.status != 304:
            s.progress.update("Container", name, "Error", error=True)
            raise ComposeError(f"starting container {name}: {exc.message}") from None
    s.progress.update("Container", name, "Started", done=True)


def stop(s: Session, summary: dict, svc: Service | None, timeout: int | None) -> None:
    name = container_name(summary)
    if summary.get("State") not in ("running", "paused", "restarting"):
        return
    s.progress.update("Container", name, "Stopping")
    t = _stop_timeout(svc, timeout)
    try:
        s.api.post(f"/containers/{summary['Id']}/stop",
                   params={"t": t} if t is not None else None)
    except ClientError as exc:
        if exc.status not in (304, 404):
            s.progress.update("Container", name, "Error", error=True)
            raise ComposeError(f"stopping container {name}: {exc.message}") from None
    s.progress.update("Container", name, "Stopped", done=True)


def remove(s: Session, summary: dict, *, volumes: bool = False) -> None:
    name = container_name(summary)
    s.progress.update("Container", name, "Removing")
    try:
        s.api.delete(f"/containers/{summary['Id']}", params={"v": volumes, "force": True})
    except ClientError as exc:
        if not exc.not_found:
            s.progress.update("Container", name, "Error", error=True)
            raise ComposeError(f"removing container {name}: {exc.message}") from None
    s.progress.update("Container", name, "Removed", done=True)


def stop_and_remove(s: Session, summary: dict, svc: Service | None,
                    timeout: int | None = None, volumes: bool = False) -> None:
    stop(s, summary, svc, timeout)
    remove(s, summary, volumes=volumes)


def for_each(items, fn) -> None:
    """fn(item) for every item, concurrently."""
    with tasks.TaskGroup() as nursery:
        for item in items:
            nursery.start_soon(fn, item)
