"""`run`: a one-off container of a service (labelled oneoff=True, named
<project>-<service>-run-<hex>), after its dependencies are up unless told otherwise."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from engine.cli import ClientError

from . import injection
from .containerspec import create_body, endpoint_config
from .planner import by_service
from .errors import ComposeError
from .images import ensure_images
from .resources import ensure_resources
from .session import Session
from .up import UpOptions, up


@dataclass
class RunOptions:
    service: str
    command: list[str] = field(default_factory=list)
    name: str | None = None
    tty: bool = False
    interactive: bool = True
    env: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    user: str | None = None
    workdir: str | None = None
    auto_remove: bool = False
    no_deps: bool = False


def create_oneoff(s: Session, opts: RunOptions) -> str:
    """Bring up what the service depends on, then create (not start) the one-off container;
    returns its id."""
    project = s.project
    if opts.service not in project.services:
        raise ComposeError(f"no such service: {opts.service}")
    svc = project.services[opts.service]
    injection.check(project, [opts.service])
    deps = [n for n in project.select([opts.service]) if n != opts.service]
    if deps and not opts.no_deps:
        up(s, UpOptions(services=deps))
    ensure_resources(s, [opts.service])
    ids = ensure_images(s, [opts.service])
    firsts = {name: items[0]["Id"] for name, items in by_service(s.containers()).items()}
    body = create_body(project, svc, 1, oneoff=True, command=opts.command or None,
                       image_id=ids.get(opts.service), service_containers=firsts)
    body.update(Tty=opts.tty, OpenStdin=opts.interactive, AttachStdin=opts.interactive,
                StdinOnce=opts.interactive)
    body["Env"] = body.get("Env", []) + list(opts.env)
    if opts.entrypoint is not None:
        body["Entrypoint"] = [opts.entrypoint] if opts.entrypoint else [""]
    if opts.user is not None:
        body["User"] = opts.user
    if opts.workdir is not None:
        body["WorkingDir"] = opts.workdir
    body["HostConfig"]["AutoRemove"] = opts.auto_remove
    body["HostConfig"]["PortBindings"] = {}  # as Compose: `run` publishes no ports
    name = opts.name or f"{project.name}-{opts.service}-run-{secrets.token_hex(6)}"
    try:
        cid = (s.api.post("/containers/create", body, params={"name": name}))["Id"]
        for key in list(svc.networks)[1:]:
            s.api.post(f"/networks/{project.network_name(key)}/connect",
                       {"Container": cid,
                        "EndpointConfig": endpoint_config(project, svc, key, 1)})
    except ClientError as exc:
        raise ComposeError(f"creating container {name}: {exc.message}") from None
    injection.inject(s, svc, cid)
    return cid
