"""Docker's /images routes over the image store: list/inspect/history/tag/rmi/prune, import and
pull (/images/create) and push with Docker's JSON progress stream (engine/api/_progress.py),
save (/images/get) and load, commit, container export; plus pyengine's own POST
/images/bootstrap. Search, login and /distribution: engine/api/registry.py."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile

import trio

from engine import errors
from engine.api import _filters as filters_api
from engine.api._image_json import image_inspect, image_summary
from engine.api._progress import ProgressResponse, progress_message
from engine.api._request import Request
from engine.api._responses import StreamingResponse, json_response, json_stream
from engine.api._router import Router
from engine.api.registry import registry_auth
from engine.filters import label_matches
from engine.images import Untagged

router = Router()
log = logging.getLogger("engine.api")


def _image_event(req: Request, action: str, actor: str, name: str, labels: dict | None = None) -> None:
    """An image event as dockerd logs it: `actor` the image id (a reference for pull and push),
    its labels while it exists (`labels`: taken before a removal), and `name`."""
    attributes = dict(labels if labels is not None else req.daemon.images.labels(actor))
    attributes["name"] = name
    req.daemon.events.publish("image", action, actor, attributes)


def _imported(req: Request, image, reference: str | None) -> None:
    """dockerd's events of an import: the tag it got, then the import."""
    if reference:
        from engine.images import parse_reference

        _image_event(req, "tag", image.id, parse_reference(reference).familiar())
    _image_event(req, "import", image.id, image.id)


_LIST_FILTERS = {"dangling": filters_api.boolean, "label": None, "before": None, "since": None, "reference": None}
_PRUNE_FILTERS = {**filters_api.PRUNE, "dangling": filters_api.boolean}


@router.get("/images/json")
async def list_images(req: Request):
    store = req.daemon.images
    filters = req.query.filters(_LIST_FILTERS)
    before = [store.resolve(v).created_unix for v in filters.get("before", ())]
    since = [store.resolve(v).created_unix for v in filters.get("since", ())]
    patterns = filters.get("reference")
    out = []
    for image in listed(store.list(), req.query.bool("all")):
        if any(image.created_unix >= t for t in before) or any(image.created_unix <= t for t in since):
            continue
        if "dangling" in filters and filters_api.truthy(filters["dangling"]) != (not image.repo_tags):
            continue
        if "label" in filters:
            labels = (image.config.get("config") or {}).get("Labels") or {}
            if not all(label_matches(labels, v) for v in filters["label"]):
                continue
        shape = image_summary(image)
        if patterns:  # as dockerd: only the references that match are listed
            shape["RepoTags"] = [r for r in image.repo_tags if _reference_matches(r, patterns)]
            shape["RepoDigests"] = [r for r in image.repo_digests if _reference_matches(r, patterns)]
            if not shape["RepoTags"] and not shape["RepoDigests"]:
                continue
        out.append(shape)
    return json_response(out)




def _reference_matches(reference: str, patterns: list[str]) -> bool:
    """dockerd's reference.FamiliarMatch: the pattern against the familiar reference or its
    name alone."""
    import fnmatch

    name = reference.split("@", 1)[0]
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return any(fnmatch.fnmatchcase(reference, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def listed(images: list, all_: bool) -> list:
    """As dockerd: an untagged image with children (a build's intermediate) is listed only
    with all=1."""
    if all_:
        return images
    parents = {i.parent for i in images if i.parent}
    return [i for i in images if i.repo_tags or i.repo_digests or i.id not in parents]


@router.get("/images/{name:path}/json")
async def inspect(req: Request):
    store = req.daemon.images
    name = req.params["name"]
    try:
        image = store.resolve(name)
    except errors.NotFound as exc:  # dockerd 20.10's inspect names the image twice
        raise errors.NotFound(f"no such image: {name}: {exc.message}") from None
    return json_response(image_inspect(store, image))


@router.get("/images/{name:path}/history")
async def history(req: Request):
    store = req.daemon.images
    image = store.resolve(req.params["name"])
    entries = image.config.get("history") or []
    chains = image.chain_ids
    sizes = [store.layer_meta(c).get("size", 0) for c in chains]
    out = []
    layer = 0
    for entry in entries:
        size = 0
        if not entry.get("empty_layer") and layer < len(sizes):
            size = sizes[layer]
            layer += 1
        out.append({
            "Id": "<missing>",
            "Created": _unix(entry.get("created")),
            "CreatedBy": entry.get("created_by", ""),
            "Tags": None,
            "Size": size,
            "Comment": entry.get("comment", ""),
        })
    out.reverse()
    # As dockerd: walk the parent chain (a build's intermediate images) down the history.
    current = image
    for item in out:
        item["Id"] = current.id
        item["Tags"] = current.repo_tags or None
        try:
            current = store.get(current.parent) if current.parent else None
        except errors.NotFound:
            current = None
        if current is None:
            break
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
    _image_event(req, "tag", image.id, store.tag(image.id, reference))
    return json_response(None, status=201)


def _removal_shape(result) -> list[dict]:
    """Docker's ImageDeleteResponseItems."""
    return [{"Untagged": r.reference} if isinstance(r, Untagged) else {"Deleted": r.id} for r in result]


@router.delete("/images/{name:path}")
async def remove(req: Request):
    store = req.daemon.images
    containers = req.daemon.containers
    image = store.resolve(req.params["name"])
    images = {i.id: store.labels(i.id) for i in store.list()}  # a removal also deletes layers
    result = store.remove(req.params["name"], force=req.query.bool("force"), in_use=containers.image_in_use,
                          prune_parents=not req.query.bool("noprune"))
    _removal_events(req, image.id, result, images)
    return json_response(_removal_shape(result))


def _removal_events(req: Request, image_id: str, result, labels: dict[str, dict]) -> None:
    """dockerd's: an untag per reference and a delete per image removed (its layers none),
    named by id, with the labels the image had."""
    for entry in result:
        if isinstance(entry, Untagged):
            _image_event(req, "untag", image_id, image_id, labels.get(image_id, {}))
        elif entry.id in labels:
            _image_event(req, "delete", entry.id, entry.id, {})  # gone: no labels, as dockerd


@router.post("/images/create")
async def create(req: Request):
    """`docker import` (fromSrc: - for the body's tar, or a URL to fetch it from), or a pull
    (fromImage)."""
    q = req.query
    store = req.daemon.images
    if q.get("fromSrc"):
        source = q.get("fromSrc")
        repo, tag_name = q.get("repo") or "", q.get("tag") or ""
        reference = None
        if repo:
            reference = f"{repo}:{tag_name}" if tag_name else repo
        changes = q.getall("changes")
        if source == "-":
            spool = await _spool(req, store)
        else:  # a URL (dockerd takes one without a scheme as http)
            from engine.images import download

            source = source if "://" in source else "http://" + source
            spool = _tmp_path(req, "import-")
            try:
                await download(source, spool)
            except BaseException:
                os.unlink(spool)
                raise
        try:
            image = await store.import_tar(spool, reference=reference, changes=changes,
                                           message=q.get("message") or f"Imported from {source}")
        finally:
            os.unlink(spool)
        _imported(req, image, reference)

        async def progress():
            yield {"status": image.id}

        return json_stream(progress())
    if q.get("fromImage"):
        name = q.get("fromImage")
        tag_name = q.get("tag") or ""
        last = name.rsplit("/", 1)[-1]
        if tag_name:
            if "@" in name or ":" in last:
                name = name  # the tag is already in the name
            elif ":" in tag_name and tag_name.split(":", 1)[0] in ("sha256", "sha512"):
                name = f"{name}@{tag_name}"
            else:
                name = f"{name}:{tag_name}"
        dist = store.distribution
        plan = await dist.resolve_pull(name, registry_auth(req))  # errors here are HTTP errors

        async def produce(emit):
            async def step(event) -> None:
                await emit(progress_message(event))

            await dist.pull(plan, step)
            _image_event(req, "pull", plan.shown, plan.ref.repository)

        return ProgressResponse(produce)
    raise errors.InvalidParameter("fromImage or fromSrc is required")


@router.post("/images/bootstrap")
async def bootstrap(req: Request):
    """pyengine's own: build a base image locally (busybox from the host's static busybox)."""
    name = req.query.get("name") or "busybox"
    if name == "debian":
        return _bootstrap_debian(req)
    if name != "busybox":
        raise errors.InvalidParameter(f"unknown bootstrap image {name!r}: use busybox or debian")
    tag_name = req.query.get("tag") or "latest"
    image = await req.daemon.images.bootstrap(name=name, tag=tag_name)
    _imported(req, image, f"{name}:{tag_name}")
    return json_response({"Id": image.id, "RepoTags": image.repo_tags}, status=201)


def _bootstrap_debian(req: Request):
    """debootstrap takes minutes: stream its output as Docker-style progress, then the id."""
    suite = req.query.get("suite") or req.query.get("tag") or "bookworm"
    tag_name = req.query.get("tag") or suite
    from engine.images import debootstrap_command

    debootstrap_command(suite, "/", "")  # 400 on an unknown suite, before the stream starts
    send, receive = trio.open_memory_channel(256)

    async def produce() -> None:
        async with send:
            def progress(line: str) -> None:
                try:
                    send.send_nowait({"status": line})
                except trio.WouldBlock:
                    pass  # a slow client misses progress lines, never the result
            try:
                image = await req.daemon.images.bootstrap_debian(
                    suite, tag_name, mirror=req.query.get("mirror"), progress=progress)
            except Exception as exc:  # the headers are gone: report in the stream
                message = exc.message if isinstance(exc, errors.EngineError) else f"bootstrap failed: {exc}"
                if not isinstance(exc, errors.EngineError):
                    log.exception("bootstrap debian failed")
                await send.send({"errorDetail": {"message": message}, "error": message})
                return
            _imported(req, image, f"debian:{tag_name}")
            await send.send({"Id": image.id, "RepoTags": image.repo_tags})

    async def stream():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            async with receive:
                async for message in receive:
                    yield message

    return json_stream(stream())


@router.post("/images/prune")
async def prune(req: Request):
    store = req.daemon.images
    containers = req.daemon.containers
    filters = req.query.filters(_PRUNE_FILTERS)
    dangling_only = filters_api.truthy(filters.get("dangling"), default=True)
    selected = filters_api.prune_filters(filters)
    deleted = []
    reclaimed = 0
    images = store.list()
    parents = {i.parent for i in images if i.parent}
    for image in images:
        if containers.image_in_use(image.id):
            continue
        if dangling_only and image.id in parents:
            continue  # as dockerd: only images nothing is built on (keeps the build cache's chain)
        if dangling_only and image.repo_tags:
            continue
        labels = image.container_config.get("Labels") or {}
        if not selected.selects(image.created_unix * 1_000_000_000, labels):
            continue
        try:
            result = store.remove(image.id, force=True, in_use=containers.image_in_use)
        except errors.EngineError:
            continue
        deleted.extend(_removal_shape(result))
        reclaimed += image.size
        _removal_events(req, image.id, result, {image.id: labels})
    return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


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


# ---------------------------------------------------------------------------------- push


@router.post("/images/{name:path}/push")
async def push(req: Request):
    dist = req.daemon.images.distribution
    plan = dist.resolve_push(req.params["name"], req.query.get("tag") or None)  # 404 before the stream
    auth = registry_auth(req)

    async def produce(emit):
        async def step(event) -> None:
            await emit(progress_message(event))

        results = await dist.push(plan, auth, step)
        for r in results:
            _image_event(req, "push", f"{plan.ref.repository}:{r.tag}", plan.ref.repository)

    return ProgressResponse(produce)


# ---------------------------------------------------------------------------------- save / load


def _tmp_path(req: Request, prefix: str) -> str:
    directory = os.path.join(req.daemon.config.data_root, "tmp")
    os.makedirs(directory, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=directory, prefix=prefix)
    os.close(fd)
    return path


async def _file_response(path: str, content_type: str = "application/x-tar") -> StreamingResponse:
    """Stream a temp file, then delete it."""

    async def chunks():
        async with await trio.open_file(path, "rb") as f:
            while True:
                data = await f.read(1 << 20)
                if not data:
                    return
                yield data

    def cleanup() -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    return StreamingResponse(chunks(), content_type, on_close=cleanup)


async def _save(req: Request, names: list[str]):
    from engine.images import save_archive as save

    store = req.daemon.images
    if not names:
        raise errors.InvalidParameter("no image names given")
    for n in names:  # 404 before anything is written, naming the image as asked (as dockerd)
        if not store.exists(n):
            raise errors.NotFound(f"No such image: {n}")
    path = _tmp_path(req, "save-")
    try:
        def work():
            with open(path, "wb") as out:
                return save(store, names, out)

        images = await trio.to_thread.run_sync(work)
    except BaseException:
        os.unlink(path)
        raise
    for image in images:
        _image_event(req, "save", image.id, image.id)
    return await _file_response(path)


@router.get("/images/get")
async def save_many(req: Request):
    return await _save(req, req.query.getall("names"))


@router.get("/images/{name:path}/get")
async def save_one(req: Request):
    return await _save(req, [req.params["name"]])


async def _one(message: dict):
    yield message


@router.post("/images/load")
async def load(req: Request):
    from engine.images import load_archive

    store = req.daemon.images
    spool = await _spool(req, store)
    try:
        loaded = await trio.to_thread.run_sync(load_archive, store, spool)
    except errors.EngineError as exc:
        # dockerd answers 200 and reports a bad archive in the JSON stream (docker-py's
        # images.load raises ImageLoadError from it; the CLI prints it and exits 1)
        return json_stream(_one({"errorDetail": {"message": exc.message}, "error": exc.message}))
    finally:
        os.unlink(spool)
    messages = []
    for image, tags in loaded:
        messages += [{"stream": f"Loaded image: {t}\n"} for t in tags] or \
            [{"stream": f"Loaded image ID: {image.id}\n"}]
        _image_event(req, "load", image.id, image.id)

    async def out():
        for m in messages:
            yield m

    return json_stream(out())


# ---------------------------------------------------------------------------------- commit / export


@router.post("/commit")
async def commit(req: Request):
    from engine.images import commit_container as commit_image
    from engine.images import parse_reference

    q = req.query
    store = req.daemon.images
    ref = q.get("container")
    if not ref:
        raise errors.InvalidParameter("container is required")
    container = req.daemon.containers.get(ref)
    image = store.get(container.image_id)
    repo, tag_name = q.get("repo") or "", q.get("tag") or ""
    reference = None
    if repo:
        reference = parse_reference(f"{repo}:{tag_name}" if tag_name else repo).familiar()
    elif tag_name:
        raise errors.InvalidParameter("tag given without a repository")
    body = await req.json(default=None)
    changes = q.getall("changes")

    from engine.api._container_json import config_shape

    config = config_shape(container.config)

    class _View:  # the container as commit sees it: its Docker Config with the body's overrides
        id = container.id
        upper_dir = container.upper_dir

    _View.config = {**config, **{k: v for k, v in body.items() if v not in (None, "", [], {})}} \
        if isinstance(body, dict) else config

    pause = q.get("pause") in (None, "") or q.bool("pause")  # dockerd: pauses unless told not to
    async with req.daemon.containers.held_still(container) if pause else contextlib.nullcontext():
        new = await trio.to_thread.run_sync(
            lambda: commit_image(store, _View, image, repo_tag=reference, comment=q.get("comment") or "",
                                 author=q.get("author") or "", changes=changes, created=None))
        # dockerd's order: pause, the tag the image got, the container's commit, unpause
        if reference:
            _image_event(req, "tag", new.id, reference)
        req.daemon.containers.publish(container, "commit", comment=q.get("comment") or "", imageID=new.id,
                                      imageRef=reference or "")
    return json_response({"Id": new.id}, status=201)


@router.get("/containers/{id}/export")
async def export(req: Request):
    from engine.images import tar_directory

    containers = req.daemon.containers
    container = containers.get(req.params["id"])
    path = _tmp_path(req, "export-")
    try:
        async with containers.rootfs_mounted(container) as rootfs:
            def work():
                with open(path, "wb") as out:
                    tar_directory(rootfs if isinstance(rootfs, str) else container.rootfs, out, overlay=False)

            await trio.to_thread.run_sync(work)
    except BaseException:
        os.unlink(path)
        raise
    req.daemon.events.publish("container", "export", container.id, {"name": container.name})
    return await _file_response(path)


