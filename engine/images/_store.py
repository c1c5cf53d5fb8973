"""Content-addressed image store under <data_root>/image/.

    blobs/sha256/<hex>            verified blobs (registry pulls/pushes, save/load later)
    layers/<chain id hex>/diff/   an unpacked layer, usable as an overlay lowerdir
    layers/<chain id hex>/meta.json  {"diff_id", "chain_id", "parent", "size"}
    images/<image id hex>.json    the image config JSON; image id = sha256 of these bytes
    images/<image id hex>.meta.json  local facts not in the config (parent, last tag time)
    repositories.json             {"Repositories": {repo: {"repo:tag" | "repo@digest": id}}}

Per-object JSON files written atomically (temp name + rename), like Docker's own
image/overlay2 tree; layers are referenced by images only (no refcount to drift): a layer
is freed when no remaining image lists its chain id."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import threading
import time

import attrs
import trio

from engine.errors import Conflict, InvalidParameter, NotFound
from engine.timefmt import format_rfc3339nano

from . import _bootstrap
from ._blobs import BlobStore
from ._changes import apply_changes
from ._reference import ID_RE, parse_reference
from ._registry import DEFAULT_POLICY, RegistryPolicy
from ._runconfig import RunConfig
from ._layers import _HEX64, LayerStore, _dumps, _hex, _is_hex64, atomic_write, chain_ids



def _now_rfc3339() -> str:
    return format_rfc3339nano(time.time_ns(), fixed=True)


def _usage(value) -> tuple[str, bool]:
    """in_use()'s answer → (container id or "", running)."""
    if not value:
        return "", False
    if isinstance(value, tuple):
        return str(value[0] or "?"), bool(value[1])
    if isinstance(value, str):
        return value, False
    return "?", False


def _parse_created(created: str) -> int:
    """RFC 3339 (any fraction length) → unix seconds."""
    if not created:
        return 0
    s = created.replace("Z", "+00:00")
    if "." in s:
        head, _, rest = s.partition(".")
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + rest[i:]
    try:
        return int(datetime.datetime.fromisoformat(s).timestamp())
    except ValueError:
        return 0


@attrs.frozen
class Untagged:
    """A step of an image removal: `reference` no longer names the image."""

    reference: str


@attrs.frozen
class Deleted:
    """A step of an image removal: an image (its id) or a layer (its chain id) is gone."""

    id: str


@attrs.define
class Image:
    id: str  # "sha256:<hex>"
    repo_tags: list[str]
    repo_digests: list[str]
    config: dict  # the full image config JSON (architecture, os, config, rootfs, history…)
    created: str
    size: int
    parent: str
    diff_ids: list[str]

    @property
    def short_id(self) -> str:
        return _hex(self.id)[:12]

    @property
    def platform(self) -> str:
        """"os/architecture[/variant]" of its config ("linux/amd64")."""
        parts = (self.config.get("os") or "linux", self.config.get("architecture") or "", self.config.get("variant"))
        return "/".join(p for p in parts if p)

    def matches_platform(self, wanted: str) -> bool:
        """Whether `wanted` ("linux/arm64", "linux/arm/v7", "linux") names this image's
        platform: os and architecture under their common aliases, the variant when both say one."""
        mine, theirs = self.platform.lower().split("/"), wanted.lower().split("/")
        aliases = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "i386": "386"}
        mine[1:2] = [aliases.get(p, p) for p in mine[1:2]]
        theirs[1:2] = [aliases.get(p, p) for p in theirs[1:2]]
        return all(a == b for a, b in zip(mine, theirs))

    @property
    def container_config(self) -> dict:
        """The image's "config" section (Env, Cmd, Entrypoint, WorkingDir, User…)."""
        return self.config.get("config") or {}

    @property
    def run_config(self) -> RunConfig:
        """The container defaults of container_config, typed (a config without "rootfs" is
        taken as the section itself)."""
        section = self.config.get("config", self.config) if "rootfs" in self.config else self.config
        return RunConfig.from_json(section)

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def created_unix(self) -> int:
        return _parse_created(self.created)


class ImageStore(LayerStore):
    def __init__(self, root: str, registry_policy: RegistryPolicy = DEFAULT_POLICY):
        self.root = root
        self.registry_policy = registry_policy  # which registries are spoken to over http
        self.layers_dir = os.path.join(root, "layers")
        self.images_dir = os.path.join(root, "images")
        self.repos_path = os.path.join(root, "repositories.json")
        for d in (self.layers_dir, self.images_dir):
            os.makedirs(d, exist_ok=True)
        self.blobs = BlobStore(os.path.join(root, "blobs"))
        self._lock = threading.RLock()
        self._configs: dict[str, dict] = {}  # hex → config
        self._meta: dict[str, dict] = {}  # hex → {"parent", "last_tag_time"}
        self._repos: dict[str, dict[str, str]] = {}
        self._layer_sizes: dict[str, int] = {}
        self._load()

    # ---------- loading ----------

    def _load(self) -> None:
        for name in os.listdir(self.layers_dir):
            if name.startswith("tmp-"):  # a crashed unpack
                shutil.rmtree(os.path.join(self.layers_dir, name), ignore_errors=True)
        for name in os.listdir(self.images_dir):
            path = os.path.join(self.images_dir, name)
            if ".tmp-" in name:
                os.unlink(path)
                continue
            h, _, ext = name.partition(".")
            if not _is_hex64(h):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if ext == "json":
                if hashlib.sha256(data).hexdigest() != h:
                    continue  # corrupt: ignore rather than serve a wrong id
                self._configs[h] = json.loads(data)
            elif ext == "meta.json":
                self._meta[h] = json.loads(data)
        try:
            with open(self.repos_path, "rb") as f:
                self._repos = json.loads(f.read()).get("Repositories", {})
        except FileNotFoundError:
            self._repos = {}
        # drop references to images that are gone
        for repo in list(self._repos):
            refs = {r: i for r, i in self._repos[repo].items() if _hex(i) in self._configs}
            if refs:
                self._repos[repo] = refs
            else:
                del self._repos[repo]

    def _save_repos(self) -> None:
        atomic_write(self.repos_path, json.dumps({"Repositories": self._repos}, indent=None).encode())

    # ---------- lookup ----------

    def _image(self, h: str) -> Image:
        cfg = self._configs[h]
        full = "sha256:" + h
        tags, digests = [], []
        for refs in self._repos.values():
            for ref, iid in refs.items():
                if iid == full:
                    (digests if "@" in ref else tags).append(ref)
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        size = sum(self._layer_size(c) for c in chain_ids(diff_ids))
        return Image(
            id=full, repo_tags=sorted(tags), repo_digests=sorted(digests), config=cfg,
            created=cfg.get("created", ""), size=size,
            parent=self._meta.get(h, {}).get("parent", ""), diff_ids=diff_ids,
        )

    def _lookup_ref(self, familiar: str, repository: str) -> str | None:
        return self._repos.get(repository, {}).get(familiar)

    def resolve(self, ref: str) -> Image:
        """A name[:tag][@digest], a full id ("sha256:" optional) or an id prefix."""
        ref = ref.strip()
        with self._lock:
            m = ID_RE.match(ref)
            if m and m.group(1) in self._configs:
                return self._image(m.group(1))
            shown = ref
            try:
                parsed = parse_reference(ref)
                shown = parsed.familiar()
                iid = self._lookup_ref(shown, parsed.repository)
                if iid is not None:
                    return self._image(_hex(iid))
                if parsed.digest:  # name@digest: also match the config digest (image id)
                    h = _hex(parsed.digest)
                    if h in self._configs and parsed.repository in {
                        parse_reference(t).repository for t in self._image(h).repo_tags
                    }:
                        return self._image(h)
            except InvalidParameter:
                pass
            prefix = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
            if prefix and set(prefix) <= _HEX64:
                hits = [h for h in self._configs if h.startswith(prefix)]
                if len(hits) == 1:
                    return self._image(hits[0])
            raise NotFound(f"No such image: {shown}")

    def get(self, image_id: str) -> Image:
        h = _hex(image_id)
        with self._lock:
            if h not in self._configs:
                raise NotFound(f"No such image: {image_id}")
            return self._image(h)

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
            return True
        except NotFound:
            return False

    def labels(self, ref: str) -> dict[str, str]:
        """The labels of the image `ref` names ({} when there is none): dockerd's image events
        carry them."""
        try:
            image = self.resolve(ref)
        except NotFound:
            return {}
        return dict((image.config.get("config") or {}).get("Labels") or {})

    def last_tag_time(self, image: Image) -> str:
        return self._meta.get(_hex(image.id), {}).get("last_tag_time", "0001-01-01T00:00:00Z")

    def list(self) -> list[Image]:
        with self._lock:
            images = [self._image(h) for h in self._configs]
        return sorted(images, key=lambda i: (i.created_unix, i.id), reverse=True)

    def layer_dirs(self, image: Image) -> list[str]:
        """overlay lowerdirs, top layer first."""
        return [os.path.join(self.layers_dir, _hex(c), "diff") for c in reversed(image.chain_ids)]

    def derived_dir(self, image: Image, name: str) -> str | None:
        """layers/<top chain id>/<name>: where another package keeps what it derives from the
        image's layers alone (the container manager's init layer), so that it goes when that
        layer goes. None for an image without layers."""
        chains = image.chain_ids
        return os.path.join(self.layers_dir, _hex(chains[-1]), name) if chains else None

    # ---------- tags ----------

    def tag(self, ref: str, new_ref: str) -> str:
        """Point new_ref (a name[:tag]) at the image `ref` names. Returns the familiar tag."""
        image = self.resolve(ref)
        parsed = parse_reference(new_ref)
        if parsed.digest:
            raise InvalidParameter(f"refusing to create a tag with a digest reference: {new_ref}")
        if parsed.repository == "sha256" or ID_RE.match(parsed.repository or ""):
            raise InvalidParameter("refusing to create an ambiguous tag using digest algorithm as name")
        familiar = parsed.familiar()
        with self._lock:
            self._repos.setdefault(parsed.repository, {})[familiar] = image.id
            self._set_meta(_hex(image.id), last_tag_time=_now_rfc3339())
            self._save_repos()
        return familiar

    def add_digest(self, image_id: str, repository: str, digest: str) -> str:
        """Record repo@digest (for pulls later)."""
        familiar = parse_reference(f"{repository}@{digest}").familiar()
        with self._lock:
            self._repos.setdefault(parse_reference(repository).repository, {})[familiar] = image_id
            self._save_repos()
        return familiar

    def untag(self, ref: str) -> str:
        """Remove one name:tag (or name@digest). Returns what was removed."""
        parsed = parse_reference(ref)
        familiar = parsed.familiar()
        with self._lock:
            refs = self._repos.get(parsed.repository, {})
            if familiar not in refs:
                raise NotFound(f"No such image: {familiar}")
            del refs[familiar]
            if not refs:
                del self._repos[parsed.repository]
            self._save_repos()
        return familiar

    def record_build_stages(self, image_id: str, stage_ids: list[str]) -> None:
        """The images of a multi-stage build's other stages that `image_id` was made from
        (FROM/COPY --from): they are its build ancestry as much as its parents are, and
        go with it when it is removed (unless tagged or used by something else)."""
        with self._lock:
            h = _hex(image_id)
            stages = sorted({s for s in stage_ids if s != image_id} |
                            set(self._meta.get(h, {}).get("stages", [])))
            if stages and h in self._configs:
                self._set_meta(h, stages=stages)

    def _set_meta(self, h: str, **kw) -> None:
        meta = dict(self._meta.get(h, {}))
        meta.update(kw)
        self._meta[h] = meta
        atomic_write(os.path.join(self.images_dir, f"{h}.meta.json"), _dumps(meta))

    # ---------- remove ----------

    def remove(self, ref: str, force: bool = False, in_use=lambda image_id: False,
               prune_parents: bool = False) -> list[Untagged | Deleted]:
        """docker rmi. `in_use(image_id)` returns a false value, True, a container id, or
        (container id, running). Returns what was done, in order.

        By name: untag; the image goes only with its last reference. By id: every
        reference goes (refused for several repositories unless forced). Used by a
        container: 409 unless forced; never for a running one. Forced with a stopped
        container, the image is untagged but kept (its layers are that container's
        rootfs), where Docker would delete the config and keep the layers."""
        with self._lock:
            image = self.resolve(ref)
            h = _hex(image.id)
            short = h[:12]
            cid, running = _usage(in_use(image.id))
            records: list[Untagged | Deleted] = []
            refs = image.repo_tags + image.repo_digests
            familiar = None
            if not self._is_id_ref(ref, image):
                try:
                    familiar = parse_reference(ref).familiar()
                except InvalidParameter:
                    familiar = None
                if familiar not in refs:
                    familiar = None
            if familiar is not None:
                others = [r for r in refs if r != familiar]
                if not others and cid and (running or not force):
                    how = "cannot be forced" if running else "must force"
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" ({how}) - '
                        f"container {cid[:12]} is using its referenced image {short}"
                    )
                records.append(Untagged(self.untag(familiar)))
                if others:
                    rest = self._image(h)
                    repo = parse_reference(familiar).repository
                    if rest.repo_tags or any(parse_reference(d).repository != repo for d in rest.repo_digests):
                        return records
                    for d in rest.repo_digests:  # only digests of that repository left
                        records.append(Untagged(self.untag(d)))
                if cid:
                    return records
            else:
                repos = {parse_reference(r).repository for r in refs}
                if len(repos) > 1 and not force:
                    raise Conflict(
                        f"conflict: unable to delete {short} (must be forced) - "
                        "image is referenced in multiple repositories"
                    )
                if cid and (running or not force):
                    kind, how = ("running", "cannot be forced") if running else ("stopped", "must be forced")
                    raise Conflict(
                        f"conflict: unable to delete {short} ({how}) - image is being used by "
                        f"{kind} container {cid[:12]}"
                    )
                for r in refs:
                    records.append(Untagged(self.untag(r)))
                if cid:
                    return records
            meta = self._meta.get(h, {})
            ancestry = [meta.get("parent", "")] + list(meta.get("stages", []))
            records += self._delete_image(h)
            if prune_parents:
                records += self._prune_ancestry(ancestry, in_use)
            return records

    def _prune_ancestry(self, ancestry: list[str], in_use) -> list[Untagged | Deleted]:
        """docker rmi without --no-prune: untagged parents that nothing else builds on (a
        build's intermediate images) go with their child, and so do the other stages of a
        multi-stage build that made it."""
        records: list[Untagged | Deleted] = []
        pending = [i for i in ancestry if i]
        while pending:
            iid = pending.pop()
            h = _hex(iid)
            if h not in self._configs:
                continue
            image = self._image(h)
            if image.repo_tags or image.repo_digests or in_use(image.id):
                continue
            if any(m.get("parent") == iid or iid in m.get("stages", ())
                   for m in self._meta.values()):
                continue
            meta = self._meta.get(h, {})
            pending += [i for i in [meta.get("parent", "")] + list(meta.get("stages", [])) if i]
            records += self._delete_image(h)
        return records

    def _is_id_ref(self, ref: str, image: Image) -> bool:
        r = ref[len("sha256:"):] if ref.startswith("sha256:") else ref
        if not (r and set(r) <= _HEX64 and _hex(image.id).startswith(r)):
            return False
        try:
            familiar = parse_reference(ref).familiar()
        except InvalidParameter:
            return True
        return familiar not in image.repo_tags

    def _delete_image(self, h: str) -> list[Untagged | Deleted]:
        cfg = self._configs.pop(h)
        self._meta.pop(h, None)
        for suffix in (".json", ".meta.json"):
            try:
                os.unlink(os.path.join(self.images_dir, h + suffix))
            except FileNotFoundError:
                pass
        records: list[Untagged | Deleted] = [Deleted("sha256:" + h)]
        still, still_diffs = set(), set()
        for other in self._configs.values():
            diffs = list((other.get("rootfs") or {}).get("diff_ids") or [])
            still.update(chain_ids(diffs))
            still_diffs.update(diffs)
        for c in reversed(chain_ids(list((cfg.get("rootfs") or {}).get("diff_ids") or []))):
            if c in still:
                continue
            d = os.path.join(self.layers_dir, _hex(c))
            meta = self._layer_meta(c)
            if meta and meta.get("diff_id") not in still_diffs:
                self.blobs.delete(meta.get("diff_id", c))
                for b in meta.get("compressed", []):
                    self.blobs.delete(b["digest"])
            if os.path.isdir(d):
                # rename first so a half-removed layer is never mistaken for a good one
                trash = os.path.join(self.layers_dir, "tmp-del-" + os.urandom(6).hex())
                os.rename(d, trash)
                shutil.rmtree(trash, ignore_errors=True)
                records.append(Deleted(c))
        return records

    # ---------- creating images ----------

    def _write_image(self, config: dict, parent: str = "") -> str:
        data = _dumps(config)
        h = hashlib.sha256(data).hexdigest()
        with self._lock:
            path = os.path.join(self.images_dir, h + ".json")
            if not os.path.exists(path):
                atomic_write(path, data)
            self._configs[h] = json.loads(data)
            if parent:
                self._set_meta(h, parent=parent)
        return "sha256:" + h

    def create_image_raw(self, config_bytes: bytes, reference: str | None = None, parent: str = "") -> Image:
        """Store config bytes as they are (a pulled or loaded config keeps its digest = id)."""
        config = json.loads(config_bytes)
        for c in chain_ids(list((config.get("rootfs") or {}).get("diff_ids") or [])):
            if not self.has_layer(c):
                raise InvalidParameter(f"layer {c} is not in the store")
        h = hashlib.sha256(config_bytes).hexdigest()
        with self._lock:
            path = os.path.join(self.images_dir, h + ".json")
            if not os.path.exists(path):
                atomic_write(path, config_bytes)
            self._configs[h] = config
            if parent:
                self._set_meta(h, parent=parent)
        if reference:
            self.tag("sha256:" + h, reference)
        return self.get("sha256:" + h)

    def config_bytes(self, image_id: str) -> bytes:
        with open(os.path.join(self.images_dir, _hex(image_id) + ".json"), "rb") as f:
            return f.read()

    @property
    def distribution(self):
        """Pull/push state (in-flight downloads) shared by all requests."""
        if getattr(self, "_distribution", None) is None:
            from ._distribution import Distribution

            self._distribution = Distribution(self)
        return self._distribution

    def create_image(self, config: dict, reference: str | None = None, parent: str = "") -> Image:
        """Store a config whose layers are all present (pull/load/commit use this)."""
        for c in chain_ids(list((config.get("rootfs") or {}).get("diff_ids") or [])):
            if not os.path.isdir(os.path.join(self.layers_dir, _hex(c), "diff")):
                raise InvalidParameter(f"layer {c} is not in the store")
        iid = self._write_image(config, parent)
        if reference:
            self.tag(iid, reference)
        return self.get(iid)

    def _import_sync(self, source, reference, changes, message, created, base_config, history_comment, privileged) -> Image:
        if reference:
            parse_reference(reference)  # fail before the heavy work
        container_config = apply_changes(dict(base_config or {}), changes)
        diff_id, _chain = self._commit_layer(source, None, privileged)
        created = created or _now_rfc3339()
        config = {
            "architecture": _bootstrap.go_arch(),
            "config": container_config,
            "created": created,
            "history": [{"created": created, "comment": history_comment if history_comment is not None else (message or "Imported from -")}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        if message:
            config["comment"] = message
        return self.create_image(config, reference)

    async def import_tar(self, fileobj_or_path, reference: str | None = None, changes=(), message: str = "",
                         *, privileged: bool = False) -> Image:
        """docker import: a rootfs tar (plain/gzip/bzip2/xz) → a one-layer image."""
        return await trio.to_thread.run_sync(
            self._import_sync, fileobj_or_path, reference, changes, message, None, None, None, privileged
        )

    async def bootstrap(self, name: str = "busybox", tag: str = "latest", busybox: str = _bootstrap.BUSYBOX) -> Image:
        """A busybox image from the host's static busybox; same id every time."""

        def build() -> Image:
            import io

            data = _bootstrap.rootfs_tar(busybox)
            return self._import_sync(
                io.BytesIO(data), f"{name}:{tag}", (), "", _bootstrap.FIXED_CREATED,
                {"Env": [_bootstrap.DEFAULT_PATH], "Cmd": ["sh"]},
                f"pyengine bootstrap from {busybox}", False,
            )

        return await trio.to_thread.run_sync(build)

    async def bootstrap_debian(self, suite: str = "bookworm", tag: str | None = None,
                               mirror: str | None = None, progress=None) -> Image:
        """debian:<suite> from debootstrap (minbase) against a Debian mirror; `progress(line)`
        gets debootstrap's output (see _bootstrap.debian_image)."""
        return await _bootstrap.debian_image(self, suite, tag, mirror, progress)
