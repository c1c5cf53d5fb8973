"""`down --rmi local|all`, as Docker Compose chooses the images: those the project built
(labelled with its name at build, for a service it knows, or every one with
--remove-orphans), the implicit `<project>-<service>` names of services without `image:`,
with `all` also every service's `image:`; then the project's dangling built images (a
service's earlier builds). Each goes by name, so the daemon prunes the untagged parents
(and build stages) that only it used."""

from __future__ import annotations

import json


from engine.cli import ClientError

from . import labels as L
from . import tasks
from .errors import ComposeError
from .images import split_ref
from .session import Session

MODES = ("local", "all")


def _familiar(ref: str) -> str:
    repo, tag = split_ref(ref)
    sep = "@" if tag.startswith("sha256:") else ":"
    return f"{repo}{sep}{tag}"


def _project_images(s: Session, dangling: bool) -> list[dict]:
    filters = {"label": [f"{L.PROJECT}={s.project.name}"],
               "dangling": ["true" if dangling else "false"]}
    return s.api.get("/images/json", params={"filters": json.dumps(filters)})


def images_to_remove(s: Session, mode: str, remove_orphans: bool = False) -> list[str]:
    if mode not in MODES:
        raise ComposeError(f"invalid value for --rmi: {mode!r}")
    project = s.project
    refs: list[str] = []
    if mode == "all":
        refs += [svc.image for svc in project.services.values() if svc.image]
    for image in _project_images(s, dangling=False):
        service = (image.get("Labels") or {}).get(L.SERVICE)
        if image.get("RepoTags") and (remove_orphans or service in project.services):
            refs.append(image["RepoTags"][0])
    refs += [project.image_name(svc) for svc in project.services.values() if not svc.image]
    return sorted({_familiar(r) for r in refs})


def remove_images(s: Session, mode: str, remove_orphans: bool = False) -> None:
    refs = images_to_remove(s, mode, remove_orphans)

    def remove(ref: str, label: str) -> None:
        try:
            s.api.delete(f"/images/{ref}")
        except ClientError as exc:
            if exc.status == 409:
                s.progress.update("Image", label, "Resource is still in use", done=True)
            elif not exc.not_found:
                s.progress.update("Image", label, exc.message, error=True)
            return
        s.progress.update("Image", label, "Removed", done=True)

    with tasks.TaskGroup() as nursery:
        for ref in refs:
            nursery.start_soon(remove, ref, ref)
    # what the project built before (a tag moved on to a rebuild) once the tagged ones went
    for image in _project_images(s, dangling=True):
        remove(image["Id"], image["Id"].split(":")[-1][:12])
