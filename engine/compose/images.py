"""Images for services: inspect, pull (`image:`), build (`build:`, POST /build with the
context as a tar) and push; `up` makes whatever is missing, concurrently."""

from __future__ import annotations

import json
from typing import Iterator


from engine.cli import ClientError

from . import labels as L
from . import tasks
from .errors import ComposeError
from .model import Service
from .session import Session


def split_ref(ref: str) -> tuple[str, str]:
    """"repo:tag" -> (repo, tag); a digest or no tag gives ("repo", "latest"/digest)."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    repo, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return repo, tag
    return ref, "latest"


def image_id(s: Session, ref: str) -> str | None:
    info = s.api.get_or_none(f"/images/{ref}/json")
    return info["Id"] if info else None


def pull(s: Session, svc: Service, *, ignore_failures: bool = False) -> None:
    ref = s.project.image_name(svc)
    repo, tag = split_ref(ref)
    s.progress.update("Image", ref, "Pulling")
    try:
        s.api.json_stream("POST", "/images/create", params={"fromImage": repo, "tag": tag},
                          headers=s.api.registry_auth(ref), on_message=lambda m: None)
    except (ComposeError, ClientError) as exc:
        s.progress.update("Image", ref, "Error", error=True)
        if ignore_failures:
            return
        raise ComposeError(f"pulling {ref} for service {svc.name}: "
                           f"{getattr(exc, 'message', exc)}") from None
    s.progress.update("Image", ref, "Pulled", done=True)


def push(s: Session, svc: Service) -> None:
    ref = s.project.image_name(svc)
    repo, tag = split_ref(ref)
    s.progress.update("Image", ref, "Pushing")
    try:
        s.api.json_stream("POST", f"/images/{repo}/push", params={"tag": tag},
                          headers=s.api.registry_auth(ref) or {"X-Registry-Auth": "e30="},
                          on_message=lambda m: None)
    except (ComposeError, ClientError) as exc:
        s.progress.update("Image", ref, "Error", error=True)
        raise ComposeError(f"pushing {ref}: {getattr(exc, 'message', exc)}") from None
    s.progress.update("Image", ref, "Pushed", done=True)


def _chunks(f) -> Iterator[bytes]:
    while True:
        data = f.read(1 << 16)
        if not data:
            return
        yield data


def build_labels(s: Session, svc: Service) -> dict[str, str]:
    """The built image's labels: the file's, and the project's and service's (as Docker
    Compose labels them: how `down --rmi local` finds what the project built)."""
    labels = dict((svc.build or {}).get("labels") or {})
    labels.update({L.VERSION: L.COMPOSE_VERSION, L.PROJECT: s.project.name,
                   L.SERVICE: svc.name})
    return labels


def build(s: Session, svc: Service, *, no_cache: bool = False, pull: bool = False) -> None:
    spec = svc.build or {}
    ref = s.project.image_name(svc)
    context = spec.get("context") or s.project.working_dir
    s.progress.update("Service", svc.name, "Building")
    try:
        from engine.buildcontext import pack_context  # builds only: not paid by other commands

        tar, dockerfile = pack_context(context, spec.get("dockerfile") or "Dockerfile")
    except (OSError, ValueError) as exc:  # no context, a bad .dockerignore pattern
        s.progress.update("Service", svc.name, "Error", error=True)
        raise ComposeError(f"building service {svc.name}: {exc}") from None
    params = {"t": [ref] + list(spec.get("tags") or []), "dockerfile": dockerfile,
              "buildargs": json.dumps({k: v for k, v in (spec.get("args") or {}).items()
                                       if v is not None}),
              "labels": json.dumps(build_labels(s, svc)), "target": spec.get("target"),
              "nocache": no_cache or None, "pull": pull or None, "rm": True, "forcerm": True,
              "networkmode": spec.get("network"), "shmsize": spec.get("shm_size")}
    try:
        s.api.json_stream("POST", "/build", params=params, content=_chunks(tar),
                          headers={"Content-Type": "application/x-tar"},
                          on_message=lambda m: None)
    except (ComposeError, ClientError) as exc:
        s.progress.update("Service", svc.name, "Error", error=True)
        raise ComposeError(f"building service {svc.name}: "
                           f"{getattr(exc, 'message', exc)}") from None
    finally:
        tar.close()
    s.progress.update("Service", svc.name, "Built", done=True)


def ensure_images(s: Session, services: list[str], *, build_all: bool = False,
                  pull_policy: str | None = None) -> dict[str, str]:
    """Build/pull what is missing (or everything for --build / pull_policy always);
    returns service -> image id."""
    ids: dict[str, str] = {}
    inspected: dict[str, tasks.Event] = {}
    found_ids: dict[str, str | None] = {}

    def current_id(ref: str) -> str | None:
        """One inspect per image however many services use it."""
        if ref in inspected:
            inspected[ref].wait()
        else:
            inspected[ref] = tasks.Event()
            found_ids[ref] = image_id(s, ref)
            inspected[ref].set()
        return found_ids[ref]

    def one(name: str) -> None:
        svc = s.project.services[name]
        ref = s.project.image_name(svc)
        policy = pull_policy or svc.config.get("pull_policy") or "missing"
        found = current = current_id(ref)
        if svc.build and (build_all or policy == "build" or current is None):
            build(s, svc)
            found = image_id(s, ref)
        elif policy == "always" or (current is None and policy not in ("never", "build")):
            pull(s, svc)
            found = image_id(s, ref)
        if found is None:
            raise ComposeError(f"service {name}: image {ref} not found")
        ids[name] = found

    with tasks.TaskGroup() as nursery:
        for name in services:
            nursery.start_soon(one, name)
    return ids
