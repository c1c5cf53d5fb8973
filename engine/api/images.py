"""Docker's /images routes over the image store (pull/push/save/load come with the images
issue), plus pyengine's own POST /images/bootstrap."""

from __future__ import annotations

import os
import tempfile

import trio

from engine import errors
from engine.api._request import Request
from engine.api._responses import json_response, json_stream
from engine.api._router import Router

router = Router()


def _publish(req: Request, action: str, image, name: str | None = None) -> None:
    attributes = {"name": name or (image.repo_tags[0] if image.repo_tags else image.id)}
    req.daemon.events.publish("image", action, name or image.id, attributes)


@router.get("/images/json")
async def list_images(req: Request):
    store = req.daemon.images
    filters = req.query.filters()
    out = []
    for image in store.list():
        if "dangling" in filters:
            dangling = not image.repo_tags
            if (filters["dangling"][0].lower() in ("true", "1")) != dangling:
                continue
        if "reference" in filters:
            import fnmatch

            if not any(fnmatch.fnmatch(tag, pattern) or fnmatch.fnmatch(tag.rsplit(":", 1)[0], pattern)
                       for tag in image.repo_tags for pattern in filters["reference"]):
                continue
        if "label" in filters:
            labels = (image.config.get("config") or {}).get("Labels") or {}
            if not all(_label(labels, v) for v in filters["label"]):
                continue
        out.append(store.summary(image))
    return json_response(out)


def _label(labels: dict, wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


@router.get("/images/{name:path}/json")
async def inspect(req: Request):
    store = req.daemon.images
    return json_response(store.inspect(store.resolve(req.params["name"])))


@router.get("/images/{name:path}/history")
async def history(req: Request):
    store = req.daemon.images
    image = store.resolve(req.params["name"])
    entries = image.config.get("history") or []
    diff_ids = list((image.config.get("rootfs") or {}).get("diff_ids") or [])
    out = []
    for entry in reversed(entries):
        out.append({
            "Id": "<missing>",
            "Created": _unix(entry.get("created")),
            "CreatedBy": entry.get("created_by", ""),
            "Tags": None,
            "Size": 0,
            "Comment": entry.get("comment", ""),
        })
    if out:
        out[0]["Id"] = image.id
        out[0]["Tags"] = image.repo_tags or None
        out[0]["Size"] = image.size if len(diff_ids) <= 1 else 0
    return json_response(out)


def _unix(created: str | None) -> int:
    if not created:
        return 0
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")[:26] + "+00:00" if "." in created else created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


@router.post("/images/{name:path}/tag")
async def tag(req: Request):
    store = req.daemon.images
    repo = req.query.get("repo")
    if not repo:
        raise errors.InvalidParameter("repository name must have at least one component")
    tag_name = req.query.get("tag") or "latest"
    image = store.resolve(req.params["name"])
    reference = f"{repo}:{tag_name}"
    store.tag(image.id, reference)
    _publish(req, "tag", image, reference)
    return json_response(None, status=201)


@router.delete("/images/{name:path}")
async def remove(req: Request):
    store = req.daemon.images
    containers = req.daemon.containers
    image = store.resolve(req.params["name"])
    result = store.remove(req.params["name"], force=req.query.bool("force"), in_use=containers.image_in_use)
    for entry in result:
        if "Untagged" in entry:
            req.daemon.events.publish("image", "untag", image.id, {"name": entry["Untagged"]})
        if "Deleted" in entry:
            req.daemon.events.publish("image", "delete", entry["Deleted"], {"name": entry["Deleted"]})
    return json_response(result)


@router.post("/images/create")
async def create(req: Request):
    """`docker import` (fromSrc=-, body is the tar). Pulling (fromImage) needs the registry
    client of the images issue."""
    q = req.query
    store = req.daemon.images
    if q.get("fromSrc"):
        if q.get("fromSrc") != "-":
            raise errors.InvalidParameter("importing from a URL is not supported; send the tar as the body")
        repo, tag_name = q.get("repo") or "", q.get("tag") or ""
        reference = None
        if repo:
            reference = f"{repo}:{tag_name}" if tag_name else repo
        changes = q.getall("changes")
        spool = await _spool(req, store)
        try:
            image = await store.import_tar(spool, reference=reference, changes=changes,
                                           message=q.get("message") or "")
        finally:
            os.unlink(spool)
        _publish(req, "import", image)

        async def progress():
            yield {"status": image.id}

        return json_stream(progress())
    if q.get("fromImage"):
        name = q.get("fromImage")
        tag_name = q.get("tag") or "latest"
        try:
            store.resolve(f"{name}:{tag_name}" if ":" not in name.rsplit("/", 1)[-1] and "@" not in name else name)
        except errors.NotFound:
            raise errors.NotFound(
                f"pull access denied for {name}, repository does not exist or may require "
                "'docker login': registry pulls are not available yet"
            ) from None

        async def done():
            yield {"status": f"Status: Image is up to date for {name}:{tag_name}"}

        return json_stream(done())
    raise errors.InvalidParameter("fromImage or fromSrc is required")


@router.post("/images/bootstrap")
async def bootstrap(req: Request):
    """pyengine's own: build a base image locally (busybox from the host's static busybox)."""
    name = req.query.get("name") or "busybox"
    tag_name = req.query.get("tag") or "latest"
    image = await req.daemon.images.bootstrap(name=name, tag=tag_name)
    _publish(req, "import", image, f"{name}:{tag_name}")
    return json_response({"Id": image.id, "RepoTags": image.repo_tags}, status=201)


@router.post("/images/prune")
async def prune(req: Request):
    store = req.daemon.images
    containers = req.daemon.containers
    filters = req.query.filters()
    dangling_only = (filters.get("dangling") or ["true"])[0].lower() in ("true", "1")
    deleted = []
    for image in store.list():
        if containers.image_in_use(image.id):
            continue
        if dangling_only and image.repo_tags:
            continue
        try:
            deleted.extend(store.remove(image.id, force=True, in_use=containers.image_in_use))
        except errors.EngineError:
            continue
    return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": 0})


async def _spool(req: Request, store) -> str:
    """The uploaded tar to a temp file beside the store (imports read it twice: digest, unpack)."""
    directory = os.path.join(req.daemon.config.data_root, "tmp")
    os.makedirs(directory, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=directory, prefix="import-")
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in req.stream():
                await trio.to_thread.run_sync(f.write, chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path
