"""Pull and push (docker pull/push) over the registry client, with Docker's progress stream.

    dist = store.distribution
    plan = await dist.resolve_pull("127.0.0.1:5000/team/app:1.0", auth)   # errors → HTTP
    await dist.pull(plan, emit)                                             # emit(Progress)
    plan = dist.resolve_push("127.0.0.1:5000/team/app", "1.0")
    await dist.push(plan, auth, emit)

Pull: manifest (an index picks this platform; Docker Hub's asked of the daemon's mirrors
first), config, then the layers: downloads run concurrently (at most the RegistryPolicy's
`max_downloads`) into temp files that are verified and renamed into the blob store;
extraction runs in layer order as downloads finish. Two pulls that need the same blob (or
layer) at once share one download (an in-flight map of digest → trio.Event). The image
(config + tags) is written last, so a pull killed half way leaves no image, only complete
blobs and layers that a later pull reuses.

Push: per layer, HEAD first ("Layer already exists"), then a cross-repository mount when the
blob is known in another repository of the same registry, else an upload — monolithic
(POST, PUT ?digest=) up to `chunk_size`, chunked (PATCH…, PUT) above. Then the config and a
Docker v2 schema 2 manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable

import attrs
import trio

from engine.errors import EngineError, InvalidParameter, NotFound

from . import _bootstrap
from ._progress import Progress, Pushed
from ._reference import DEFAULT_DOMAIN, Reference, parse_reference
from ._registry import (INDEX_TYPES, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER, MEDIA_DOCKER_MANIFEST,
                        MEDIA_OCI_MANIFEST, Registry, RegistryError)

Emit = Callable[[Progress | Pushed], Awaitable[None]]

GZIP_TYPES = ("application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.oci.image.layer.v1.tar+gzip",
              "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
              "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
PLAIN_TYPES = ("application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar")
ZSTD_TYPES = ("application/vnd.oci.image.layer.v1.tar+zstd",)

log = logging.getLogger(__name__)


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def platform_matches(platform: dict) -> bool:
    return platform.get("os", "linux") == "linux" and platform.get("architecture") == _bootstrap.go_arch()


@attrs.define
class PullPlan:
    ref: Reference
    registry: Registry
    manifest_digest: str  # of what the reference names (an index, possibly)
    manifest: dict  # the image manifest chosen
    shown: str  # "127.0.0.1:5000/team/app:1.0" as Status lines show it


@attrs.define
class PushPlan:
    ref: Reference
    tags: list[str]


class Distribution:
    chunk_size = 8 << 20

    def __init__(self, store) -> None:
        self.store = store
        self._downloads: dict[str, trio.Event] = {}
        self._unpacks: dict[str, trio.Event] = {}
        self.statistics = {"blobs_downloaded": 0, "bytes_downloaded": 0, "blobs_uploaded": 0}

    # ------------------------------------------------------------------ pull

    async def resolve_pull(self, name: str, auth: dict | None) -> PullPlan:
        """The manifest to pull. Docker Hub's images are asked of the daemon's mirrors first,
        in order (without the Hub credentials, as dockerd); a mirror that fails or lacks the
        image passes to the next, then to the Hub."""
        ref = parse_reference(name)
        policy = self.store.registry_policy
        if ref.domain == DEFAULT_DOMAIN:
            for mirror in policy.mirrors:
                try:
                    return await self._resolve_on(Registry(ref.domain, None, policy=policy, mirror=mirror), ref)
                except EngineError as exc:
                    log.info("pull %s: mirror %s: %s; trying the next source", ref.familiar(), mirror, exc.message)
        return await self._resolve_on(Registry(ref.domain, auth, policy=policy), ref)

    async def _resolve_on(self, registry: Registry, ref: Reference) -> PullPlan:
        """The plan for `ref` from `registry`, which the plan then holds (closed on failure)."""
        try:
            reference = ref.digest or ref.tag
            try:
                body, media, digest = await registry.get_manifest(ref.path, reference)
            except NotFound as e:
                what = f"{ref.repository}:{ref.tag}" if not ref.digest else f"{ref.repository}@{ref.digest}"
                if "manifest" in e.message.lower():
                    raise NotFound(f"manifest for {what} not found: {e.message}") from None
                raise NotFound(f"pull access denied for {ref.repository}, repository does not exist "
                               f"or may require 'docker login': {e.message}") from None
            except EngineError as e:
                if e.status in (401, 403):  # dockerd answers 404 here (the CLI would prompt on 401)
                    raise NotFound(f"pull access denied for {ref.repository}, repository does not exist "
                                  f"or may require 'docker login': {e.message}") from None
                raise
            manifest = _json(body, "manifest")
            if media in INDEX_TYPES or "manifests" in manifest:
                chosen = next((m for m in manifest.get("manifests", []) if platform_matches(m.get("platform") or {})), None)
                if chosen is None:
                    raise NotFound(f"no matching manifest for linux/{_bootstrap.go_arch()} in the manifest list entries")
                body, media, _ = await registry.get_manifest(ref.path, chosen["digest"])
                manifest = _json(body, "manifest")
            if manifest.get("schemaVersion") != 2 or "config" not in manifest:
                raise InvalidParameter(f"unsupported manifest format {media!r} for {ref.familiar()}")
            return PullPlan(ref, registry, digest, manifest, ref.familiar())
        except BaseException:
            await registry.aclose()
            raise

    async def pull(self, plan: PullPlan, emit: Emit):
        """Returns the Image; progress goes to `emit`."""
        try:
            return await self._pull(plan, emit)
        finally:
            await plan.registry.aclose()

    async def _pull(self, plan: PullPlan, emit: Emit):
        ref, reg, store = plan.ref, plan.registry, self.store
        repo = ref.path
        await emit(Progress(f"Pulling from {ref.repository.split('/', 1)[1] if ref.domain != 'docker.io' else ref.path}",
                            ref.digest or ref.tag))
        cfg_desc = plan.manifest["config"]
        cfg_resp = await reg.request("GET", repo, f"/blobs/{cfg_desc['digest']}")
        config_bytes = cfg_resp.content
        if "sha256:" + hashlib.sha256(config_bytes).hexdigest() != cfg_desc["digest"]:
            raise RegistryError(f"config digest mismatch for {cfg_desc['digest']}")
        config = _json(config_bytes, "image config")
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layers = [l for l in plan.manifest.get("layers", [])]
        if len(diff_ids) != len(layers):
            raise InvalidParameter("manifest and image config disagree on the number of layers")
        for layer in layers:
            mt = layer.get("mediaType", MEDIA_DOCKER_LAYER)
            if mt in ZSTD_TYPES:
                raise InvalidParameter(f"layer {layer['digest']}: zstd-compressed layers are not supported")
            if mt not in GZIP_TYPES + PLAIN_TYPES:
                raise InvalidParameter(f"layer {layer['digest']}: unsupported media type {mt!r}")
        from ._store import chain_ids

        chains = chain_ids(diff_ids)
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        source = f"{ref.domain}/{ref.path}"

        done = [trio.Event() for _ in layers]
        need = [not store.has_layer(c) for c in chains]
        for i, layer in enumerate(layers):
            await emit(Progress("Pulling fs layer" if need[i] else "Already exists", _short(layer["digest"]),
                                layer=True))
        limiter = trio.Semaphore(self.store.registry_policy.max_downloads)

        async def download(i: int) -> None:
            desc = layers[i]
            lid = _short(desc["digest"])
            try:
                if limiter.value == 0:
                    await emit(Progress("Waiting", lid, layer=True))
                async with limiter:
                    await self._fetch_blob(reg, repo, desc, emit)
            finally:
                done[i].set()

        async def extract() -> None:
            parent = None
            for i, desc in enumerate(layers):
                lid = _short(desc["digest"])
                if not need[i]:
                    parent = chains[i]
                    continue
                await done[i].wait()
                if not store.blobs.has(desc["digest"]):
                    return  # the download failed; its error is on its way
                layer_size = desc.get("size", 0)
                await emit(Progress("Extracting", lid, layer=True, current=layer_size, total=layer_size))
                blob = {"digest": desc["digest"], "mediaType": desc.get("mediaType", MEDIA_DOCKER_LAYER),
                        "size": desc.get("size", 0), "sources": [source]}
                await self._unpack(chains[i], diff_ids[i], parent, blob)
                await emit(Progress("Pull complete", lid, layer=True))
                parent = chains[i]

        async with trio.open_nursery() as nursery:
            for i in range(len(layers)):
                if need[i]:
                    nursery.start_soon(download, i)
            nursery.start_soon(extract)
        for c in chains:
            if not store.has_layer(c):
                raise RegistryError(f"layer {c} missing after pull")
        for i, c in enumerate(chains):
            store.add_layer_blob(c, {"digest": layers[i]["digest"],
                                     "mediaType": layers[i].get("mediaType", MEDIA_DOCKER_LAYER),
                                     "size": layers[i].get("size", 0), "sources": [source]})
        existed = None
        try:
            existed = store.get(image_id)
        except NotFound:
            pass
        tag_ref = ref.familiar() if not ref.digest else None
        was_tagged = existed is not None and (tag_ref is None or tag_ref in existed.repo_tags)
        image = await trio.to_thread.run_sync(store.create_image_raw, config_bytes, tag_ref)
        store.add_digest(image.id, ref.repository, plan.manifest_digest)
        await emit(Progress(f"Digest: {plan.manifest_digest}"))
        if was_tagged:
            await emit(Progress(f"Status: Image is up to date for {plan.shown}"))
        else:
            await emit(Progress(f"Status: Downloaded newer image for {plan.shown}"))
        return store.get(image.id)

    async def _fetch_blob(self, reg: Registry, repo: str, desc: dict, emit: Emit) -> None:
        digest, lid = desc["digest"], _short(desc["digest"])
        blobs = self.store.blobs
        while True:
            if blobs.has(digest):
                await emit(Progress("Download complete", lid, layer=True))
                return
            ev = self._downloads.get(digest)
            if ev is None:
                break
            await ev.wait()  # someone else is downloading it; then look again
        ev = self._downloads[digest] = trio.Event()
        try:
            attempt = 0
            while True:
                try:
                    await self._download(reg, repo, desc, emit)
                    break
                except (RegistryError, OSError) as e:
                    attempt += 1
                    if attempt >= 3 or isinstance(e, RegistryError) and "mismatch" in e.message:
                        raise
                    await emit(Progress(f"Retrying in {attempt} second{'s' if attempt > 1 else ''}", lid, layer=True))
                    await trio.sleep(attempt)
            await emit(Progress("Download complete", lid, layer=True))
        finally:
            del self._downloads[digest]
            ev.set()

    async def _download(self, reg: Registry, repo: str, desc: dict, emit: Emit) -> None:
        import httpx

        digest, lid = desc["digest"], _short(desc["digest"])
        total = int(desc.get("size") or 0)
        blobs = self.store.blobs
        tmp = os.path.join(blobs.root, f".tmp-dl-{os.urandom(8).hex()}")
        sha = hashlib.sha256()
        current = 0
        last = 0.0
        try:
            resp = await reg.request("GET", repo, f"/blobs/{digest}", stream=True)
            try:
                async with await trio.open_file(tmp, "wb") as f:
                    pending: list[bytes] = []
                    pending_size = 0
                    try:
                        async for chunk in resp.aiter_bytes():
                            sha.update(chunk)
                            pending.append(chunk)
                            pending_size += len(chunk)
                            current += len(chunk)
                            if pending_size >= 1 << 20:
                                await f.write(b"".join(pending))
                                pending, pending_size = [], 0
                            now = time.monotonic()
                            if now - last > 0.1:
                                last = now
                                await emit(Progress("Downloading", lid, layer=True, current=current, total=total,
                                                    bar=True))
                    except httpx.HTTPError as e:
                        raise RegistryError(f"download of {digest} failed: {e}") from None
                    if pending:
                        await f.write(b"".join(pending))
            finally:
                await resp.aclose()
            await emit(Progress("Downloading", lid, layer=True, current=current, total=total, bar=True))
            await emit(Progress("Verifying Checksum", lid, layer=True))
            if "sha256:" + sha.hexdigest() != digest:
                raise RegistryError(f"filesystem layer verification failed for digest {digest}: digest mismatch")
            await trio.to_thread.run_sync(os.replace, tmp, blobs.path(digest))
            self.statistics["blobs_downloaded"] += 1
            self.statistics["bytes_downloaded"] += current
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    async def _unpack(self, chain: str, diff_id: str, parent: str | None, blob: dict) -> None:
        store = self.store
        while True:
            if store.has_layer(chain):
                return
            ev = self._unpacks.get(chain)
            if ev is None:
                break
            await ev.wait()
        ev = self._unpacks[chain] = trio.Event()
        try:
            def work():
                got, _ = store._commit_layer(store.blobs.path(blob["digest"]), parent, False,
                                             keep_tar=False, compressed=blob)
                return got

            got = await trio.to_thread.run_sync(work)
            if got != diff_id:
                raise RegistryError(f"layer {blob['digest']}: diff id {got} does not match the image config's {diff_id}")
        finally:
            del self._unpacks[chain]
            ev.set()

    # ------------------------------------------------------------------ push

    def resolve_push(self, name: str, tag: str | None) -> PushPlan:
        ref = parse_reference(name, default_tag=False)
        if ref.digest:
            raise InvalidParameter("cannot push a digest reference")
        tag = tag or ref.tag
        if tag:
            if not self._has(ref, tag):
                raise NotFound(f"An image does not exist locally with the tag: {ref.repository}")
            return PushPlan(ref, [tag])
        tags = sorted(t.rsplit(":", 1)[1] for img in self.store.list() for t in img.repo_tags
                      if parse_reference(t).repository == ref.repository)
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.repository}")
        return PushPlan(ref, tags)

    def _has(self, ref: Reference, tag: str) -> bool:
        try:
            img = self.store.resolve(f"{ref.repository}:{tag}")
        except NotFound:
            return False
        return f"{ref.repository}:{tag}" in img.repo_tags

    async def push(self, plan: PushPlan, auth: dict | None, emit: Emit) -> list[Pushed]:
        """Every tag of the plan; each one's Pushed is also emitted, last for its tag."""
        ref = plan.ref
        await emit(Progress(f"The push refers to repository [{ref.full_name}]"))
        out = []
        async with Registry(ref.domain, auth, policy=self.store.registry_policy) as reg:
            for tag in plan.tags:
                out.append(await self._push_tag(reg, ref, tag, emit))
        return out

    async def _push_tag(self, reg: Registry, ref: Reference, tag: str, emit: Emit) -> Pushed:
        store = self.store
        repo = ref.path
        image = store.resolve(f"{ref.repository}:{tag}")
        chains = image.chain_ids
        for d in reversed(image.diff_ids):
            await emit(Progress("Preparing", _short(d), layer=True))
        blobs: list[dict | None] = [None] * len(chains)
        limiter = trio.Semaphore(self.store.registry_policy.max_uploads)
        source = f"{ref.domain}/{ref.path}"

        async def one(i: int) -> None:
            lid = _short(image.diff_ids[i])
            if limiter.value == 0:
                await emit(Progress("Waiting", lid, layer=True))
            async with limiter:
                blob = await trio.to_thread.run_sync(store.compressed_layer, chains[i])
                blobs[i] = blob
                status = await self._push_blob(reg, repo, blob, lid, emit, ref.domain)
                await emit(Progress(status, lid, layer=True))
                store.add_layer_blob(chains[i], {**blob, "sources": [source]})

        # Make sure the auth for this scope is settled before bodies are streamed.
        await reg.request("GET", repo, "/tags/list", actions="pull,push", ok=(200, 404))
        async with trio.open_nursery() as nursery:
            for i in range(len(chains)):
                nursery.start_soon(one, i)
        config_bytes = store.config_bytes(image.id)
        config_digest = image.id
        if not await reg.blob_exists(repo, config_digest, "pull,push"):
            await self._upload(reg, repo, config_digest, len(config_bytes), _bytes_reader(config_bytes), None, emit)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_DOCKER_MANIFEST,
            "config": {"mediaType": MEDIA_DOCKER_CONFIG, "size": len(config_bytes), "digest": config_digest},
            "layers": [{"mediaType": _docker_layer_type(b["mediaType"]), "size": b["size"], "digest": b["digest"]}
                       for b in blobs if b is not None],
        }
        body = json.dumps(manifest, indent=3).encode()
        resp = await reg.request("PUT", repo, f"/manifests/{tag}", actions="pull,push", content=body,
                                 headers={"Content-Type": MEDIA_DOCKER_MANIFEST}, ok=(200, 201, 202))
        digest = resp.headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        store.add_digest(image.id, ref.repository, digest)
        await emit(Progress(f"{tag}: digest: {digest} size: {len(body)}"))
        pushed = Pushed(tag, digest, len(body), image.id)
        await emit(pushed)
        return pushed

    async def _push_blob(self, reg: Registry, repo: str, blob: dict, lid: str, emit: Emit, domain: str) -> str:
        digest = blob["digest"]
        if await reg.blob_exists(repo, digest, "pull,push"):
            return "Layer already exists"
        location = None
        for src in blob.get("sources", []):
            host, _, from_repo = src.partition("/")
            if host != domain or from_repo == repo:
                continue
            resp = await reg.request("POST", repo, "/blobs/uploads/", actions="pull,push",
                                     params={"mount": digest, "from": from_repo}, ok=(201, 202))
            if resp.status_code == 201:
                return f"Mounted from {from_repo}"
            location = resp.headers.get("location")
            break
        path = self.store.blobs.path(digest)

        def reader():
            return open(path, "rb")

        await self._upload(reg, repo, digest, blob["size"], reader, lid, emit, location)
        return "Pushed"

    async def _upload(self, reg: Registry, repo: str, digest: str, size: int, opener, lid: str | None,
                      emit: Emit, location: str | None = None) -> None:
        import httpx

        if location is None:
            resp = await reg.request("POST", repo, "/blobs/uploads/", actions="pull,push", ok=(202,))
            location = resp.headers.get("location")
        if not location:
            raise RegistryError("registry did not return an upload location")
        location = str(httpx.URL(reg.base).join(location))
        f = await trio.to_thread.run_sync(opener)
        try:
            sent = 0
            if size <= self.chunk_size:
                data = await trio.to_thread.run_sync(f.read)
                if lid:
                    await emit(Progress("Pushing", lid, layer=True, current=len(data), total=size, bar=True))
                await reg.request("PUT", repo, "", url=location, actions="pull,push", params={"digest": digest},
                                  content=data, headers={"Content-Type": "application/octet-stream"}, ok=(201, 204))
            else:
                while True:
                    data = await trio.to_thread.run_sync(f.read, self.chunk_size)
                    if not data:
                        break
                    resp = await reg.request(
                        "PATCH", repo, "", url=location, actions="pull,push", content=data,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": f"{sent}-{sent + len(data) - 1}"}, ok=(202,))
                    sent += len(data)
                    location = str(httpx.URL(location).join(resp.headers.get("location") or location))
                    if lid:
                        await emit(Progress("Pushing", lid, layer=True, current=sent, total=size, bar=True))
                await reg.request("PUT", repo, "", url=location, actions="pull,push", params={"digest": digest},
                                  content=b"", headers={"Content-Type": "application/octet-stream"}, ok=(201, 204))
            self.statistics["blobs_uploaded"] += 1
        finally:
            f.close()


def _bytes_reader(data: bytes):
    import io

    return lambda: io.BytesIO(data)


def _docker_layer_type(media: str) -> str:
    if media in PLAIN_TYPES:
        return "application/vnd.docker.image.rootfs.diff.tar"
    return MEDIA_DOCKER_LAYER


def _json(body: bytes, what: str) -> dict:
    try:
        value = json.loads(body)
    except ValueError:
        raise RegistryError(f"invalid {what} JSON from the registry") from None
    if not isinstance(value, dict):
        raise RegistryError(f"invalid {what} from the registry")
    return value


__all__ = ["Distribution", "PullPlan", "PushPlan", "MEDIA_OCI_MANIFEST"]
