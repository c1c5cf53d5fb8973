"""`docker cp`: stat, tar out of, and extract into a container's filesystem from the host.

The container's filesystem is seen from the host as its rootfs (the overlay's merged dir)
plus its bind mounts/volumes, given as [(container_path, host_path, readonly)]. Every path is
resolved the way the container would see it (`resolve_in_container`): component by component,
symlinks read and interpreted as container paths (an absolute target restarts at the container
root, `..` never climbs above it — Go's securejoin / FollowSymlinkInScope), and a mount point
switches to the mount's host directory. Nothing is ever followed on the host side.

Extraction (archive_put) resolves each entry's parent in the same way, so an archive cannot
escape with `..`, absolute names, or a symlink it planted earlier (`link -> /` then
`link/etc/x` lands in the container's /etc, as with Docker's chrootarchive); the final
component is created with O_NOFOLLOW / O_EXCL. Known limit: like Docker's pre-openat2 code,
this is path based, so a process inside a *running* container racing to swap a directory for
a symlink between our check and our use could redirect a write; openat2(RESOLVE_IN_ROOT) per
component would close that (see the report/TODO).

Streaming: archive_get's tar is produced by a synchronous generator stepped in worker threads
(one `trio.to_thread.run_sync` per ~256 KiB chunk), pulled by the consumer: bounded memory
(one chunk in flight), natural backpressure, no background task to leak or cancel.
archive_put's worker thread pulls request-body chunks back through `trio.from_thread.run`.

Docker's errors: a missing path → NotFound("Could not find the file <path> in container
<the name or id the request gave>"); extracting into a non-directory → InvalidParameter("extraction point is not a
directory"); read-only volume / rootfs → Forbidden("mounted volume is marked read-only" /
"container rootfs is marked read-only") — 403 as the v1.41 spec documents (moby itself has
answered 500 and, later, 400 for these).
"""

from __future__ import annotations

import errno
import functools
import grp
import os
import posixpath
import pwd
import shutil
import stat as stat_mod
import tarfile
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence

import trio

import attrs

from engine import errors

__all__ = [
    "PathStat",
    "archive_get",
    "archive_put",
    "go_file_mode",
    "resolve_in_container",
    "stat_path",
]

Mount = tuple[str, str, bool]  # (container path, host path, readonly)

_MAX_SYMLINKS = 255
_CHUNK = 256 * 1024
_BLOCK = tarfile.BLOCKSIZE

# Go os.FileMode type bits
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20


def go_file_mode(st_mode: int) -> int:
    """A POSIX st_mode as Go's os.FileMode (what Docker puts in PathStat.mode)."""
    mode = st_mode & 0o777
    kind = stat_mod.S_IFMT(st_mode)
    if kind == stat_mod.S_IFDIR:
        mode |= MODE_DIR
    elif kind == stat_mod.S_IFLNK:
        mode |= MODE_SYMLINK
    elif kind == stat_mod.S_IFBLK:
        mode |= MODE_DEVICE
    elif kind == stat_mod.S_IFCHR:
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE
    elif kind == stat_mod.S_IFIFO:
        mode |= MODE_NAMED_PIPE
    elif kind == stat_mod.S_IFSOCK:
        mode |= MODE_SOCKET
    if st_mode & stat_mod.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat_mod.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat_mod.S_ISVTX:
        mode |= MODE_STICKY
    return mode


# --- path resolution ----------------------------------------------------------------------
class _Scope:
    """A container's filesystem as seen from the host."""

    def __init__(self, rootfs: str, mounts: Sequence[Mount]):
        self.rootfs = os.path.realpath(rootfs)
        normalized = []
        for cpath, hpath, readonly in mounts:
            cpath = posixpath.normpath("/" + cpath.lstrip("/"))
            # The kernel followed host symlinks when it made the bind mount; so do we, once.
            normalized.append((cpath, os.path.realpath(hpath), bool(readonly)))
        normalized.sort(key=lambda m: len(m[0]), reverse=True)  # the deepest mount wins
        self.mounts = normalized

    def mount_for(self, cpath: str) -> Mount | None:
        for mount in self.mounts:
            mpath = mount[0]
            if cpath == mpath or mpath == "/" or cpath.startswith(mpath + "/"):
                return mount
        return None

    def host(self, cpath: str) -> str:
        """Host path of a symlink-free, normalised container path."""
        mount = self.mount_for(cpath)
        if mount is None:
            base, rel = self.rootfs, cpath.lstrip("/")
        else:
            base, rel = mount[1], cpath[len(mount[0]):].lstrip("/")
        return os.path.join(base, rel) if rel else base

    def is_mount_point(self, cpath: str) -> bool:
        return any(m[0] == cpath for m in self.mounts)

    def resolve(self, path: str, follow_final: bool = True) -> tuple[str, str]:
        """→ (symlink-free container path, host path). Missing components are appended
        as they are (the result may not exist)."""
        todo = deque(c for c in path.split("/") if c)
        resolved = "/"
        links = 0
        while todo:
            comp = todo.popleft()
            if comp == ".":
                continue
            if comp == "..":
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, comp)
            if not todo and not follow_final:
                resolved = candidate
                break
            if self.is_mount_point(candidate):
                resolved = candidate
                continue
            try:
                st = os.lstat(self.host(candidate))
            except (FileNotFoundError, NotADirectoryError):
                resolved = candidate
                continue
            if not stat_mod.S_ISLNK(st.st_mode):
                resolved = candidate
                continue
            links += 1
            if links > _MAX_SYMLINKS:
                raise errors.InvalidParameter(f"too many levels of symbolic links: {path}")
            target = os.readlink(self.host(candidate))
            if target.startswith("/"):
                resolved = "/"
            todo.extendleft(reversed([c for c in target.split("/") if c]))
        return resolved, self.host(resolved)


def resolve_in_container(
    rootfs: str, mounts: Sequence[Mount], path: str, follow_final_symlink: bool = True
) -> str:
    """The host path of container `path`, resolved as the container sees it (never outside
    the rootfs or a mount's host dir). Blocking: call from a worker thread."""
    return _Scope(rootfs, mounts).resolve(path, follow_final_symlink)[1]


def _trailing_means_follow(path: str) -> bool:
    """Docker follows the last symlink when the path ends in "/" or "/." (or is the root)."""
    return path.endswith("/") or path.endswith("/.") or path in (".", "")


def _go_base(path: str) -> str:
    """Go's filepath.Base: "/a/b/" → "b", "/a/." → ".", "/" → "/"."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return posixpath.basename(stripped)


def _abs_container_path(path: str) -> str:
    """Docker's PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)."""
    cleaned = posixpath.normpath("/" + path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/.") or path == ".":
        return cleaned.rstrip("/") + "/." if cleaned != "/" else "/."
    if path.endswith("/") and cleaned != "/":
        return cleaned + "/"
    return cleaned


def _not_found(path: str, container_id: str) -> errors.NotFound:
    return errors.NotFound(f"Could not find the file {path} in container {container_id}")


@attrs.frozen
class PathStat:
    """What `docker cp` learns of a path first (the API sends it as
    X-Docker-Container-Path-Stat)."""

    name: str  # the last component of the path as given ("/" for the root, "." for "dir/.")
    size: int
    mode: int  # Go's os.FileMode (go_file_mode)
    mtime_ns: int
    link_target: str = ""  # a symlink's target, resolved inside the container


def _stat(scope: _Scope, path: str, container_id: str) -> tuple[PathStat, str, str]:
    """→ (PathStat, resolved container path, host path)."""
    if not path:
        raise errors.InvalidParameter("must specify path parameter")
    abs_path = _abs_container_path(path)
    cpath, host = scope.resolve(abs_path, follow_final=_trailing_means_follow(path))
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, container_id) from None
    link_target = ""
    if stat_mod.S_ISLNK(st.st_mode):
        link_target, _ = scope.resolve(abs_path, follow_final=True)
    result = PathStat(name=_go_base(abs_path), size=st.st_size, mode=go_file_mode(st.st_mode),
                      mtime_ns=st.st_mtime_ns, link_target=link_target)
    return result, cpath, host


def stat_path(rootfs: str, mounts: Sequence[Mount], path: str, container_id: str = "") -> PathStat:
    """The PathStat of `path` (the last component not followed, unless the path ends in "/"
    or "/."). Blocking."""
    return _stat(_Scope(rootfs, mounts), path, container_id)[0]


# --- archive out --------------------------------------------------------------------------
def _walk(scope: _Scope, cpath: str, host: str, arcname: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(arcname, host path, lstat) of cpath and, for a directory, everything below it — in
    the container's view: bind mounts below cpath are entered, symlinks are not followed."""
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        return
    yield arcname, host, st
    if not stat_mod.S_ISDIR(st.st_mode):
        return
    try:
        names = set(os.listdir(host))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for mpath, _, _ in scope.mounts:  # mount points the rootfs dir may not show
        if mpath != cpath and posixpath.dirname(mpath) == cpath:
            names.add(posixpath.basename(mpath))
    prefix = "" if arcname == "/" else arcname.rstrip("/")
    for name in sorted(names):
        child = posixpath.join(cpath, name)
        yield from _walk(scope, child, scope.host(child), f"{prefix}/{name}")


@functools.lru_cache(maxsize=512)
def _owner_name(of_group: bool, number: int) -> str:
    """The host's name for a uid or gid, as Go's tar.FileInfoHeader puts it in dockerd's headers."""
    try:
        return grp.getgrgid(number).gr_name if of_group else pwd.getpwuid(number).pw_name
    except KeyError:
        return ""


def _tarinfo(arcname: str, host: str, st: os.stat_result, hardlinks: dict) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mode = stat_mod.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname, info.gname = _owner_name(False, st.st_uid), _owner_name(True, st.st_gid)
    info.mtime = int(st.st_mtime)  # whole seconds, as dockerd's tars: no PAX header for the fraction
    info.size = 0
    mode = st.st_mode
    if stat_mod.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in hardlinks:
            info.type, info.linkname = tarfile.LNKTYPE, hardlinks[key]
        else:
            if st.st_nlink > 1:
                hardlinks[key] = arcname
            info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat_mod.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
        if not info.name.endswith("/"):
            info.name += "/"
    elif stat_mod.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(host)
    elif stat_mod.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat_mod.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:  # sockets are skipped, as Docker does
        raise ValueError("unsupported file type")
    return info


def _tar_stream(scope: _Scope, cpath: str, host: str, arcname: str) -> Iterator[bytes]:
    """A tar of cpath as ~_CHUNK byte pieces. Synchronous; step it in a worker thread."""
    buf = bytearray()
    hardlinks: dict = {}
    for name, path, st in _walk(scope, cpath, host, arcname):
        try:
            info = _tarinfo(name, path, st, hardlinks)
        except (ValueError, OSError):
            continue
        if info.type == tarfile.REGTYPE:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue  # vanished or replaced since the walk
            with os.fdopen(fd, "rb") as f:
                buf += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                remaining = info.size
                while remaining > 0:
                    data = f.read(min(_CHUNK, remaining))
                    if not data:  # the file shrank: pad to the size in the header
                        data = bytes(min(_CHUNK, remaining))
                    buf += data
                    remaining -= len(data)
                    if len(buf) >= _CHUNK:
                        yield bytes(buf)
                        buf.clear()
                pad = (-info.size) % _BLOCK
                buf += bytes(pad)
        else:
            buf += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if len(buf) >= _CHUNK:
            yield bytes(buf)
            buf.clear()
    buf += bytes(2 * _BLOCK)
    yield bytes(buf)


async def archive_get(
    rootfs: str, mounts: Sequence[Mount], path: str, container_id: str = ""
) -> tuple[PathStat, AsyncIterator[bytes]]:
    """(PathStat, tar stream) of `path`, named like Docker's: "/a/dir" → entries "dir/",
    "dir/x"…; "/a/dir/." → "./", "./x" (contents only); "/link" → the symlink itself;
    "/link/" → the target's content under the name "link"."""
    scope = _Scope(rootfs, mounts)
    stat, cpath, host = await trio.to_thread.run_sync(_stat, scope, path, container_id)
    abs_path = _abs_container_path(path)
    gen = _tar_stream(scope, cpath, host, _go_base(abs_path))

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await trio.to_thread.run_sync(next, gen, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            gen.close()

    return stat, chunks()


# --- archive in ---------------------------------------------------------------------------
class _BodyReader:
    """File-like over an async iterator of bytes, for a worker thread (tarfile "r|*")."""

    def __init__(self, chunks: AsyncIterator[bytes]):
        self._it = chunks.__aiter__()
        self._buf = bytearray()
        self._eof = False

    async def _next(self) -> bytes | None:
        try:
            return await self._it.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            chunk = trio.from_thread.run(self._next)
            if chunk is None:
                self._eof = True
            else:
                self._buf += chunk
        if n < 0:
            n = len(self._buf)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


def _clean_member_name(name: str) -> list[str]:
    """Archive member name → path components below the extraction point. Leading "/" is
    dropped (Docker joins it under the destination); ".." that would climb above it is
    refused."""
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise errors.InvalidParameter(f"invalid archive entry {name!r}: it points outside the destination")
            parts.pop()
        else:
            parts.append(comp)
    return parts


class _Extractor:
    def __init__(self, scope: _Scope, dest: str, no_overwrite_dir_non_dir: bool, readonly_rootfs: bool):
        self.scope = scope
        self.dest = dest  # symlink-free container path of the extraction point
        self.no_overwrite = no_overwrite_dir_non_dir
        self.readonly_rootfs = readonly_rootfs
        self.is_root = os.geteuid() == 0
        self.dir_times: list[tuple[str, int]] = []

    def check_writable(self, cpath: str) -> None:
        mount = self.scope.mount_for(cpath)
        if mount is not None:
            if mount[2]:
                raise errors.Forbidden("mounted volume is marked read-only")
        elif self.readonly_rootfs:
            raise errors.Forbidden("container rootfs is marked read-only")

    def ensure_dir(self, parts: list[str]) -> str:
        """Resolve (in scope) and create the parent directories → parent's container path."""
        cpath = self.dest
        for comp in parts:
            cpath, host = self.scope.resolve(posixpath.join(cpath, comp), follow_final=True)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                self.check_writable(cpath)
                os.mkdir(host, 0o755)
                continue
            if not stat_mod.S_ISDIR(st.st_mode):
                raise errors.InvalidParameter(f"cannot extract below {cpath}: not a directory")
        return cpath

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _clean_member_name(member.name)
        if not parts:
            return  # "./": the extraction point itself is left as it is
        parent = self.ensure_dir(parts[:-1])
        cpath = posixpath.join(parent, parts[-1])
        host = self.scope.host(cpath)
        self.check_writable(cpath)
        is_dir = member.isdir()
        try:
            existing = os.lstat(host)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            existing_dir = stat_mod.S_ISDIR(existing.st_mode)
            if self.no_overwrite and existing_dir and not is_dir:
                raise errors.InvalidParameter(
                    f'cannot overwrite directory "{cpath}" with non-directory "{member.name}"'
                )
            if self.no_overwrite and not existing_dir and is_dir:
                raise errors.InvalidParameter(
                    f'cannot overwrite non-directory "{cpath}" with directory "{member.name}"'
                )
            if not (existing_dir and is_dir):
                if self.scope.is_mount_point(cpath):
                    raise errors.InvalidParameter(f"cannot replace mount point {cpath}")
                if existing_dir:
                    shutil.rmtree(host)
                else:
                    os.unlink(host)
        if is_dir:
            if existing is None or not stat_mod.S_ISDIR(existing.st_mode):
                os.mkdir(host, 0o700)
        elif member.isreg():
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                source = tar.extractfile(member)
                while True:
                    data = source.read(_CHUNK)
                    if not data:
                        break
                    out.write(data)
        elif member.issym():
            os.symlink(member.linkname, host)  # interpreted in the container's scope later
        elif member.islnk():
            target_parts = _clean_member_name(member.linkname)
            _, target_h = self.scope.resolve(
                posixpath.join(self.dest, *target_parts), follow_final=False
            )
            os.link(target_h, host, follow_symlinks=False)
            return  # a hard link shares the target's metadata
        elif member.isfifo():
            os.mkfifo(host, 0o600)
        elif member.ischr() or member.isblk():
            kind = stat_mod.S_IFCHR if member.ischr() else stat_mod.S_IFBLK
            os.mknod(host, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        else:
            return  # other types (GNU volume headers…) are ignored
        self.apply_metadata(member, host)

    def apply_metadata(self, member: tarfile.TarInfo, host: str) -> None:
        if self.is_root:
            try:
                os.lchown(host, member.uid, member.gid)
            except OSError:
                pass
        if not member.issym():
            os.chmod(host, member.mode & 0o7777)
        mtime_ns = int(member.mtime * 1_000_000_000)
        if member.isdir():
            self.dir_times.append((host, mtime_ns))  # after the children are written
        else:
            try:
                os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
            except OSError:
                pass

    def finish(self) -> None:
        for host, mtime_ns in reversed(self.dir_times):
            try:
                os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
            except OSError:
                pass


def _prepare_extract(scope: _Scope, path: str, container_id: str, readonly_rootfs: bool) -> str:
    if not path:
        raise errors.InvalidParameter("must specify path parameter")
    cpath, host = scope.resolve(_abs_container_path(path), follow_final=True)
    try:
        st = os.lstat(host)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, container_id) from None
    if not stat_mod.S_ISDIR(st.st_mode):
        raise errors.InvalidParameter("extraction point is not a directory")
    mount = scope.mount_for(cpath)
    if mount is not None and mount[2]:
        raise errors.Forbidden("mounted volume is marked read-only")
    if mount is None and readonly_rootfs:
        raise errors.Forbidden("container rootfs is marked read-only")
    return cpath


def _extract_all(extractor: _Extractor, reader: _BodyReader) -> None:
    try:
        with tarfile.open(fileobj=reader, mode="r|*") as tar:
            for member in tar:
                extractor.extract(tar, member)
    except tarfile.ReadError as exc:
        if str(exc) != "empty file":  # an empty body puts nothing, as dockerd takes it
            raise errors.InvalidParameter(f"invalid tar archive: {exc}") from None
    except tarfile.TarError as exc:
        raise errors.InvalidParameter(f"invalid tar archive: {exc}") from None
    except OSError as exc:
        if exc.errno in (errno.EROFS,):
            raise errors.Forbidden("container rootfs is marked read-only") from None
        raise errors.SystemError_(f"extracting archive: {exc}") from None
    finally:
        extractor.finish()


async def archive_put(
    rootfs: str,
    mounts: Sequence[Mount],
    path: str,
    chunks: AsyncIterator[bytes],
    no_overwrite_dir_non_dir: bool = False,
    *,
    container_id: str = "",
    readonly_rootfs: bool = False,
) -> None:
    """Extract the tar (optionally gzip/bzip2/xz compressed) read from `chunks` into the
    existing directory `path` of the container (a symlink to a directory is followed)."""
    scope = _Scope(rootfs, mounts)
    dest = await trio.to_thread.run_sync(_prepare_extract, scope, path, container_id, readonly_rootfs)
    extractor = _Extractor(scope, dest, no_overwrite_dir_non_dir, readonly_rootfs)
    await trio.to_thread.run_sync(_extract_all, extractor, _BodyReader(chunks))
