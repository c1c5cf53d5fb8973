"""Secrets and configs whose content is not a file (`environment: VAR`, a config's `content:`)
are copied into the container after it is created and before it starts (PUT archive), as
Docker Compose does: /run/secrets/NAME (mode 0400) and /NAME for configs (mode 0444), owned
by the item's uid/gid. File-based ones are bind mounts (containerspec)."""

from __future__ import annotations

import io
import posixpath
import time

from engine.cli import ClientError

from .errors import ComposeError
from .model import Project, Service
from .session import Session

KINDS = {"secrets": ("/run/secrets", 0o400), "configs": ("", 0o444)}


def content_items(project: Project, svc: Service) -> list[tuple[str, dict, dict]]:
    """(kind, the service's item, the top-level spec) of what must be copied in."""
    out = []
    for kind in KINDS:
        for item in svc.config.get(kind) or []:
            item = item if isinstance(item, dict) else {"source": item}
            spec = getattr(project, kind).get(item["source"]) or {}
            if "file" not in spec and ("environment" in spec or "content" in spec):
                out.append((kind, item, spec))
    return out


def check(project: Project, services: list[str]) -> None:
    """Before anything is created: every variable a used secret/config names is set."""
    for name in services:
        for kind, item, spec in content_items(project, project.services[name]):
            if spec.get("content") is None:
                raise ComposeError(f"environment variable {spec['environment']!r} required by "
                                   f"{kind[:-1]} {item['source']!r} is not set")


def target_path(kind: str, item: dict) -> str:
    base, _mode = KINDS[kind]
    target = item.get("target") or item["source"]
    return target if target.startswith("/") else posixpath.join(base or "/", target)


def archive(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A tar of (absolute path, content, mode, uid, gid) to extract at /."""
    import tarfile  # only for projects with secrets/configs to inject

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data, mode, uid, gid in entries:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
            info.mtime = time.time()
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _number(value, default: int, where: str) -> int:
    if value is None:
        return default
    try:
        return int(str(value), 8) if isinstance(value, str) else int(value)
    except ValueError:
        raise ComposeError(f"{where}: invalid value {value!r}") from None


def _id(value, where: str) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise ComposeError(f"{where}: invalid value {value!r}") from None


def inject(s: Session, svc: Service, cid: str) -> None:
    """Copy the service's content-based secrets and configs into created container cid."""
    entries = []
    for kind, item, spec in content_items(s.project, svc):
        where = f"services.{svc.name}.{kind}.{item['source']}"
        if spec.get("content") is None:
            raise ComposeError(f"environment variable {spec['environment']!r} required by "
                               f"{kind[:-1]} {item['source']!r} is not set")
        entries.append((target_path(kind, item), str(spec["content"]).encode(),
                        _number(item.get("mode"), KINDS[kind][1], f"{where}.mode"),
                        _id(item.get("uid"), f"{where}.uid"),
                        _id(item.get("gid"), f"{where}.gid")))
    if not entries:
        return
    try:
        s.api.put(f"/containers/{cid}/archive", params={"path": "/"},
                  content=archive(entries),
                  headers={"Content-Type": "application/x-tar"})
    except ClientError as exc:
        raise ComposeError(f"service {svc.name}: copying secrets into the container: "
                           f"{exc.message}") from None
