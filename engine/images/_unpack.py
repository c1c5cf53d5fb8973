"""Unpack one layer tar (plain/gzip/bzip2/xz, possibly hostile) into a fresh directory.

Rules (Docker's, but without a chroot to lean on):
- names are cleaned; a leading "/" is stripped; anything that still climbs out ("..")
  is refused;
- no entry may be written through a symlink: a parent path that is a symlink is refused
  (a layer tar made from a directory walk never needs that);
- relative symlink targets must stay inside the layer (absolute ones are fine: they are
  resolved inside the container's root at run time); hardlink targets must be earlier
  entries of this layer;
- device nodes are skipped unless privileged (FIFOs are kept);
- AUFS whiteouts become overlay ones: ".wh.<name>" → char device 0:0 named <name>,
  ".wh..wh..opq" → xattr trusted.overlay.opaque=y on the directory.
The work happens in a temp dir that is renamed into place only on success; the diff id
(sha256 of the uncompressed tar stream) is computed on the way through."""

import bz2
import gzip
import hashlib
import lzma
import os
import shutil
import stat
import tarfile

import attrs

from engine.errors import InvalidParameter

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_XATTR = "trusted.overlay.opaque"


class _HashingReader:
    """File-like: hashes and counts everything read through it."""

    def __init__(self, raw, tee=None):
        self.raw = raw
        self.tee = tee  # a writable file that gets a copy of every byte (the layer tar blob)
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        if self.tee is not None and data:
            self.tee.write(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def decompressed(raw):
    """Wrap a byte stream so it yields the uncompressed tar, whatever the compression."""
    peek = raw.peek(6)[:6] if hasattr(raw, "peek") else None
    if peek is None:
        import io

        raw = io.BufferedReader(raw)
        peek = raw.peek(6)[:6]
    if peek.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if peek.startswith(b"BZh"):
        return bz2.BZ2File(raw, mode="rb")
    if peek.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, mode="rb")
    return raw


@attrs.define
class UnpackResult:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    size: int  # bytes of regular files
    tar_size: int


def _clean_name(name: str) -> str | None:
    """Cleaned relative path, or None for the root itself. Raises on escapes."""
    stripped = name.lstrip("/")  # Docker: absolute names are relative to the layer
    if not stripped:
        return None
    norm = os.path.normpath(stripped)
    if norm in ("", "."):
        return None
    if norm == ".." or norm.startswith("../"):
        raise InvalidParameter(f"invalid tar entry {name!r}: path escapes the layer")
    return norm


def _check_parents(root: str, rel: str) -> str:
    """Make sure rel's parent directories exist and none is a symlink; return the
    absolute parent path."""
    parent = root
    for part in os.path.dirname(rel).split("/") if os.path.dirname(rel) else []:
        parent = os.path.join(parent, part)
        try:
            st = os.lstat(parent)
        except FileNotFoundError:
            os.mkdir(parent, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise InvalidParameter(f"invalid tar entry {rel!r}: parent {part!r} is a symlink")
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidParameter(f"invalid tar entry {rel!r}: parent {part!r} is not a directory")
    return parent


def _remove_existing(path: str, keep_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _apply_meta(path: str, m: tarfile.TarInfo, is_link: bool = False) -> None:
    try:
        os.lchown(path, m.uid, m.gid)
    except OSError:
        pass
    if not is_link:
        os.chmod(path, m.mode & 0o7777)
    for key, value in (m.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            try:
                os.setxattr(path, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError:
                pass
    try:
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
    except OSError:
        pass


def _extract(tf: tarfile.TarFile, root: str, privileged: bool) -> int:
    size = 0
    dir_meta: list[tuple[str, tarfile.TarInfo]] = []
    for m in tf:
        rel = _clean_name(m.name)
        if rel is None:
            if m.isdir():
                dir_meta.append((root, m))
            continue
        base = os.path.basename(rel)
        parent = _check_parents(root, rel)
        path = os.path.join(root, rel)

        if base.startswith(WHITEOUT_PREFIX):
            if base == WHITEOUT_OPAQUE:
                os.setxattr(parent, OPAQUE_XATTR, b"y")
            elif base.startswith(WHITEOUT_META_PREFIX):
                pass  # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs)
            else:
                target = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
                _remove_existing(target, keep_dir=False)
                os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
            continue

        if m.isdir():
            _remove_existing(path, keep_dir=True)
            if not os.path.isdir(path):
                os.mkdir(path, 0o755)
            dir_meta.append((path, m))
            continue
        _remove_existing(path, keep_dir=False)
        if m.isreg():
            src = tf.extractfile(m)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            size += m.size
            _apply_meta(path, m)
        elif m.issym():
            target = m.linkname
            if not target.startswith("/"):
                resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
                if resolved == ".." or resolved.startswith("../"):
                    raise InvalidParameter(f"invalid symlink {rel!r} -> {target!r}: escapes the layer")
            os.symlink(target, path)
            _apply_meta(path, m, is_link=True)
        elif m.islnk():
            link_rel = _clean_name(m.linkname)
            if link_rel is None:
                raise InvalidParameter(f"invalid hardlink {rel!r} -> {m.linkname!r}")
            _check_parents(root, link_rel)
            src_path = os.path.join(root, link_rel)
            if not os.path.lexists(src_path) or os.path.isdir(src_path) and not os.path.islink(src_path):
                raise InvalidParameter(f"invalid hardlink {rel!r} -> {m.linkname!r}: target not in this layer")
            os.link(src_path, path, follow_symlinks=False)
        elif m.isfifo():
            os.mkfifo(path, m.mode & 0o7777)
            _apply_meta(path, m)
        elif m.ischr() or m.isblk():
            if m.ischr() and m.devmajor == 0 and m.devminor == 0:
                os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))  # already an overlay whiteout
            elif privileged:
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                os.mknod(path, (m.mode & 0o7777) | kind, os.makedev(m.devmajor, m.devminor))
                _apply_meta(path, m)
            # else: skipped, as an unprivileged unpack must
        else:
            raise InvalidParameter(f"invalid tar entry {rel!r}: unsupported type {m.type!r}")
    # Directory times last: creating entries inside them changed them.
    for path, m in reversed(dir_meta):
        _apply_meta(path, m)
    return size


def unpack_layer(source, dest_parent: str, privileged: bool = False, tee=None) -> tuple[str, UnpackResult]:
    """Unpack `source` (path or binary file object) into a new temp dir under
    dest_parent. Returns (temp dir, result); the caller renames it into place. Nothing is
    left behind on failure. `tee` (a writable binary file) receives the uncompressed tar."""
    os.makedirs(dest_parent, exist_ok=True)
    tmp = os.path.join(dest_parent, "tmp-" + os.urandom(8).hex())
    os.mkdir(tmp, 0o755)
    own = None
    try:
        raw = source
        if isinstance(source, (str, os.PathLike)):
            raw = own = open(source, "rb")
        hr = _HashingReader(decompressed(raw), tee)
        try:
            with tarfile.open(fileobj=hr, mode="r|") as tf:
                size = _extract(tf, tmp, privileged)
            hr.drain()
        except tarfile.TarError as e:
            raise InvalidParameter(f"invalid tar archive: {e}") from e
        except (EOFError, OSError, lzma.LZMAError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            raise InvalidParameter(f"invalid tar archive: {e}") from e
        return tmp, UnpackResult("sha256:" + hr.sha.hexdigest(), size, hr.size)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if own is not None:
            own.close()
