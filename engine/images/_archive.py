"""Image archives: docker save / load (docker-archive, and OCI image layouts on load),
commit (a container's overlay upper dir → a layer) and export (a rootfs → a tar).

docker-archive, as `docker save` (20.10) writes it:

    manifest.json       [{"Config": "<id hex>.json", "RepoTags": [...], "Layers": ["<l>/layer.tar", ...]}]
    repositories        {"repo": {"tag": "<top layer dir>"}}
    <id hex>.json       the image config, byte for byte (its sha256 is the image id)
    <l>/layer.tar, <l>/VERSION ("1.0"), <l>/json     one dir per layer, uncompressed tar

Load follows manifest.json's paths (so Docker 25's blobs/sha256/… layout loads too) and
accepts compressed layer tars; an OCI layout (oci-layout + index.json + blobs/) is read
through its index. Layer tars from an overlay dir turn overlay whiteouts back into AUFS ones:
char device 0:0 → ".wh.<name>", opaque xattr → "<dir>/.wh..wh..opq"."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile

from engine.errors import InvalidParameter, NotFound

from ._reference import parse_reference
from ._store import chain_ids
from ._unpack import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

_SKIP_XATTR_PREFIXES = ("trusted.overlay.",)


def _tarinfo(name: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.mtime = int(st.st_mtime)
    ti.uname = ti.gname = ""
    return ti


def _xattrs(fd: int | str) -> dict[str, str]:
    """The PAX xattr headers of the object an open fd (or a /proc/self/fd path) holds."""
    out = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return out
    for n in names:
        if n.startswith(_SKIP_XATTR_PREFIXES):
            continue
        try:
            out["SCHILY.xattr." + n] = os.getxattr(fd, n).decode("utf-8", "surrogateescape")
        except OSError:
            pass
    return out


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def tar_directory(root: str, out, *, overlay: bool = True) -> None:
    """Write a tar of `root` (sorted walk, hardlinks kept) to the binary file `out`.
    overlay=True converts overlay whiteouts to AUFS whiteouts (layer diffs); overlay=False
    writes the tree as it is (export of a merged rootfs).

    Walked through directory handles, every open O_NOFOLLOW and every stat taken of what was
    opened: a process of a running container (commit, export) that swaps a directory or a
    file for a symlink while we read cannot make us read through it, into the host."""
    seen_inodes: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:

        def add(at: int, n: str, rel: str) -> int | None:
            """Add entry `n` of the directory `at` → an open handle of it when it is a
            directory to walk (the caller closes it), else None."""
            try:
                st = os.stat(n, dir_fd=at, follow_symlinks=False)
            except FileNotFoundError:
                return None  # gone since the listing
            mode = st.st_mode
            if overlay and stat.S_ISCHR(mode) and st.st_rdev == 0:
                parent, base = os.path.split(rel)
                ti = _tarinfo(os.path.join(parent, WHITEOUT_PREFIX + base), st)
                ti.type, ti.size, ti.mode = tarfile.REGTYPE, 0, 0o644
                tf.addfile(ti)
                return None
            if stat.S_ISLNK(mode):
                try:
                    target = os.readlink(n, dir_fd=at)
                except OSError:
                    return None  # not a symlink any more
                ti = _tarinfo(rel, st)
                ti.type, ti.linkname = tarfile.SYMTYPE, target
                tf.addfile(ti)
                return None
            if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
                flags = os.O_RDONLY | _NOFOLLOW | (os.O_DIRECTORY if stat.S_ISDIR(mode) else 0)
                try:
                    fd = os.open(n, flags, dir_fd=at)
                except OSError:
                    return None  # swapped for something else since the stat
                try:
                    return add_open(fd, rel)
                except BaseException:
                    os.close(fd)
                    raise
            if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
                return None  # sockets
            try:
                fd = os.open(n, os.O_PATH | _NOFOLLOW, dir_fd=at)
            except OSError:
                return None
            try:
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode):
                    return None
                ti = _tarinfo(rel, st)
                pax = _xattrs(f"/proc/self/fd/{fd}")  # that inode, not a path
                if pax:
                    ti.pax_headers = pax
                if stat.S_ISFIFO(st.st_mode):
                    ti.type = tarfile.FIFOTYPE
                else:
                    ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                    ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tf.addfile(ti)
            finally:
                os.close(fd)
            return None

        def add_open(fd: int, rel: str) -> int | None:
            """Add the directory or regular file open as `fd` (closed here unless returned)."""
            st = os.fstat(fd)
            is_dir = stat.S_ISDIR(st.st_mode)
            ti = _tarinfo(rel + "/" if is_dir else rel, st)
            pax = _xattrs(fd)
            if pax:
                ti.pax_headers = pax
            if is_dir:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
                if overlay and _is_opaque(fd):
                    wh = _tarinfo(os.path.join(rel, WHITEOUT_OPAQUE), st)
                    wh.type, wh.size, wh.mode = tarfile.REGTYPE, 0, 0o644
                    tf.addfile(wh)
                return fd
            with os.fdopen(fd, "rb") as f:
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen_inodes:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen_inodes[key]
                    tf.addfile(ti)
                    return None
                seen_inodes[key] = rel
                ti.type, ti.size = tarfile.REGTYPE, st.st_size
                tf.addfile(ti, f)
            return None

        def walk(at: int, rel: str) -> None:
            for n in sorted(os.listdir(at)):
                r = os.path.join(rel, n) if rel else n
                child = add(at, n, r)
                if child is not None:
                    try:
                        walk(child, r)
                    finally:
                        os.close(child)

        try:
            top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the daemon's own path
        except FileNotFoundError:
            return  # an empty tar
        try:
            walk(top, "")
        finally:
            os.close(top)


# ---------------------------------------------------------------------------- commit


def commit(store, container, image, *, repo_tag: str | None, comment: str, author: str,
           changes, created: str) -> "object":
    """A new image: the container's upper dir as a layer on top of its image (sync)."""
    from ._changes import apply_changes
    from ._store import _now_rfc3339

    tmpdir = os.path.join(store.root, "tmp")
    os.makedirs(tmpdir, exist_ok=True)
    tmp = os.path.join(tmpdir, f"commit-{os.urandom(8).hex()}.tar")
    try:
        empty = not os.listdir(container.upper_dir)  # as the builder's commit_upper
        if empty:  # as dockerd: a container that changed nothing adds no layer
            diff_ids = list(image.diff_ids)
        else:
            with open(tmp, "wb") as out:
                tar_directory(container.upper_dir, out, overlay=True)
            parent_chain = image.chain_ids[-1] if image.chain_ids else None
            diff_id, _chain = store._commit_layer(tmp, parent_chain, True)
            diff_ids = [*image.diff_ids, diff_id]
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    base = json.loads(store.config_bytes(image.id))
    ccfg = {k: v for k, v in dict(container.config or {}).items()}
    ccfg["Image"] = image.id
    for k in ("AttachStdin", "AttachStdout", "AttachStderr", "OpenStdin", "StdinOnce", "Tty"):
        ccfg.pop(k, None)
    new_cfg = apply_changes(ccfg, changes)
    created = created or _now_rfc3339()
    cmd = list(container.config.get("Entrypoint") or []) + list(container.config.get("Cmd") or [])
    history = list(base.get("history") or [])
    entry = {"created": created, "created_by": " ".join(cmd)}
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    if empty:
        entry["empty_layer"] = True
    history.append(entry)
    config = {
        "architecture": base.get("architecture", ""),
        "author": author or "",
        "comment": comment or "",
        "config": new_cfg,
        "container": container.id,
        "container_config": dict(container.config or {}),
        "created": created,
        "docker_version": "20.10.0",
        "history": history,
        "os": base.get("os", "linux"),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if base.get("variant"):
        config["variant"] = base["variant"]
    return store.create_image(config, repo_tag, parent=image.id)


# ---------------------------------------------------------------------------- save


def save(store, refs: list[str], out) -> list:
    """Write a docker-archive of the images `refs` name to the binary file `out`.
    Returns the images saved."""
    images: dict[str, tuple] = {}  # id → (image, [repo tags asked])
    for ref in refs:
        image = store.resolve(ref)
        tags = images.setdefault(image.id, (image, []))[1]
        try:
            parsed = parse_reference(ref)
            familiar = parsed.familiar()
            if familiar in image.repo_tags and familiar not in tags:
                tags.append(familiar)
        except InvalidParameter:
            pass
    manifest, repositories = [], {}
    written_layers: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for image, tags in images.values():
            if not tags and not _is_id_ref_any(refs, image):
                tags = list(image.repo_tags)
            layer_paths = []
            parent_v1 = ""
            for i, chain in enumerate(image.chain_ids):
                diff_id = image.diff_ids[i]
                v1 = hashlib.sha256(f"{parent_v1} {chain}".encode()).hexdigest()
                layer_paths.append(f"{v1}/layer.tar")
                if v1 not in written_layers:
                    written_layers.add(v1)
                    meta = store.layer_meta(chain)
                    _add_bytes(tf, f"{v1}/", None)
                    _add_bytes(tf, f"{v1}/VERSION", b"1.0")
                    v1json = {"id": v1, "created": "1970-01-01T00:00:00Z", "container_config": {"Cmd": None}}
                    if parent_v1:
                        v1json["parent"] = parent_v1
                    if i == len(image.chain_ids) - 1:
                        v1json.update({"created": image.created, "config": image.container_config,
                                       "os": image.config.get("os", "linux"),
                                       "architecture": image.config.get("architecture", "")})
                    _add_bytes(tf, f"{v1}/json", json.dumps(v1json).encode())
                    with store.open_layer_tar(chain) as src:
                        size = meta.get("tar_size")
                        if size is None:
                            raise InvalidParameter(f"layer {diff_id}: size unknown")
                        ti = tarfile.TarInfo(f"{v1}/layer.tar")
                        ti.size, ti.mode, ti.mtime = size, 0o644, 0
                        hashing = _HashCheck(src, diff_id)
                        tf.addfile(ti, hashing)
                        hashing.check()
                parent_v1 = v1
            cfg_name = f"{image.id[7:]}.json"
            _add_bytes(tf, cfg_name, store.config_bytes(image.id))
            manifest.append({"Config": cfg_name, "RepoTags": tags or None, "Layers": layer_paths})
            for t in tags:
                repo, _, tag = t.rpartition(":")
                repositories.setdefault(repo, {})[tag] = parent_v1
        _add_bytes(tf, "manifest.json", json.dumps(manifest).encode())
        if repositories:
            _add_bytes(tf, "repositories", json.dumps(repositories).encode())
    return [img for img, _ in images.values()]


def _is_id_prefix(ref: str, image) -> bool:
    r = ref[7:] if ref.startswith("sha256:") else ref
    return bool(r) and image.id[7:].startswith(r)


def _is_id_ref_any(refs: list[str], image) -> bool:
    for ref in refs:
        if _is_id_prefix(ref, image):
            try:
                if parse_reference(ref).familiar() in image.repo_tags:
                    continue
            except InvalidParameter:
                pass
            return True
    return False


class _HashCheck:
    def __init__(self, raw, expected: str):
        self.raw, self.expected = raw, expected
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        return data

    def check(self) -> None:
        if "sha256:" + self.sha.hexdigest() != self.expected:
            raise InvalidParameter(f"layer {self.expected}: stored tar does not match its diff id")


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes | None) -> None:
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    if data is None:
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(ti)
    else:
        ti.size, ti.mode = len(data), 0o644
        tf.addfile(ti, io.BytesIO(data))


# ---------------------------------------------------------------------------- load


def load(store, path: str) -> list[tuple[object, list[str]]]:
    """Load a docker-archive or an OCI layout tar (plain or compressed). Returns
    [(image, [tags])] for each image loaded."""
    try:
        tf = tarfile.open(path, mode="r:*")
    except tarfile.TarError:  # its text lists every decompressor tried, over several lines
        raise InvalidParameter("invalid archive: not a tar file (plain, gzip, bzip2 or xz)") from None
    with tf:
        members = {_norm(m.name): m for m in tf.getmembers()}

        def read(name: str) -> bytes:
            m = members.get(_norm(name))
            if m is None:
                raise InvalidParameter(f"invalid archive: {name} not found")
            while m.issym() or m.islnk():
                target = m.linkname if m.islnk() else os.path.join(os.path.dirname(m.name), m.linkname)
                m = members.get(_norm(target))
                if m is None:
                    raise InvalidParameter(f"invalid archive: {name} is a dangling link")
            f = tf.extractfile(m)
            if f is None:
                raise InvalidParameter(f"invalid archive: {name} is not a file")
            return f.read()

        def opener(name: str):
            return io.BytesIO(read(name)) if members.get(_norm(name)) is not None and members[_norm(name)].size < (64 << 20) \
                else _member_file(tf, members, name)

        if "manifest.json" in members:
            entries = json.loads(read("manifest.json"))
            items = [(e["Config"], e.get("Layers") or [], list(e.get("RepoTags") or [])) for e in entries]
            loaded = []
            for cfg_name, layers, tags in items:
                loaded.append(_load_one(store, read(cfg_name), [lambda n=n: opener(n) for n in layers], tags))
            return loaded
        if "index.json" in members:
            return _load_oci(store, read, opener)
        raise InvalidParameter("invalid archive: neither manifest.json (docker-archive) nor index.json (OCI layout) found")


def _member_file(tf, members, name):
    m = members[_norm(name)]
    return tf.extractfile(m)


def _norm(name: str) -> str:
    return os.path.normpath(name.lstrip("./").lstrip("/")) if name not in (".", "./") else "."


def _load_oci(store, read, opener):
    from ._distribution import platform_matches

    index = json.loads(read("index.json"))
    loaded = []

    def blob(digest: str) -> bytes:
        return read("blobs/" + digest.replace(":", "/"))

    def walk(desc: dict, name: str | None):
        mt = desc.get("mediaType", "")
        data = json.loads(blob(desc["digest"]))
        if "manifests" in data or mt.endswith("index.v1+json") or mt.endswith("list.v2+json"):
            chosen = [m for m in data["manifests"] if platform_matches(m.get("platform") or {})] or \
                     [m for m in data["manifests"] if not m.get("platform")]
            for m in chosen[:1]:
                walk(m, name or _oci_name(m))
            return
        cfg = blob(data["config"]["digest"])
        layers = [lambda d=l["digest"]: opener("blobs/" + d.replace(":", "/")) for l in data.get("layers", [])]
        loaded.append(_load_one(store, cfg, layers, [name] if name else []))

    for m in index.get("manifests", []):
        walk(m, _oci_name(m))
    if not loaded:
        raise InvalidParameter("invalid OCI layout: no image for this platform")
    return loaded


def _oci_name(desc: dict) -> str | None:
    ann = desc.get("annotations") or {}
    name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
    if not name:
        return None
    try:
        ref = parse_reference(name)
    except InvalidParameter:
        return None
    if ref.digest:
        return None
    if "/" not in name and ":" not in name and "io.containerd.image.name" not in ann:
        return None  # a bare tag ("1.0") names no repository
    return ref.familiar()


def _load_one(store, config_bytes: bytes, layer_openers: list, tags: list[str]):
    config = json.loads(config_bytes)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    if len(diff_ids) != len(layer_openers):
        raise InvalidParameter("invalid archive: the config's diff_ids and the layer list differ in length")
    chains = chain_ids(diff_ids)
    parent = None
    for i, open_layer in enumerate(layer_openers):
        if not store.has_layer(chains[i]):
            src = open_layer()
            try:
                got, _ = store._commit_layer(src, parent, False)
            finally:
                close = getattr(src, "close", None)
                if close:
                    close()
            if got != diff_ids[i]:
                raise InvalidParameter(f"invalid archive: layer {i} has diff id {got}, the config says {diff_ids[i]}")
        parent = chains[i]
    image = store.create_image_raw(config_bytes)
    done = []
    for t in tags:
        done.append(store.tag(image.id, t))
    return store.get(image.id), done


__all__ = ["commit", "load", "save", "tar_directory", "NotFound"]
