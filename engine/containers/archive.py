"""`docker cp`: stat, tar out of, and extract into a container's filesystem from the host.

The container's filesystem is seen from the host as its rootfs (the overlay's merged dir)
plus its bind mounts/volumes, given as [(container_path, host_path, readonly)]. Every path is
resolved the way the container would see it (`resolve_in_container`): component by component,
symlinks read and interpreted as container paths (an absolute target restarts at the container
root, `..` never climbs above it — Go's securejoin / FollowSymlinkInScope), and a mount point
switches to the mount's host directory. Nothing is ever followed on the host side.

Extraction (archive_put) resolves each entry's parent in the same way, so an archive cannot
escape with `..`, absolute names, or a symlink it planted earlier (`link -> /` then
`link/etc/x` lands in the container's /etc, as with Docker's chrootarchive).

Every step goes through directory handles, never through a host path string: each component
is opened (O_PATH|O_NOFOLLOW) relative to the handle of the directory before it, a symlink is
read through its own handle, and every operation (create, replace, stat, read, chown, chmod,
utime) is done relative to the handle of the resolved parent, or on the object's own handle.
A process inside a *running* container that swaps a directory for a symlink while we work
(CVE-2018-15664, the symlink-exchange race Docker closed by extracting in a chroot) can only
make us see the swap at our next lookup, which resolves it in the container's scope again:
nothing we do lands outside the rootfs and its mounts' host directories.

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

import contextlib
import errno
import fcntl
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
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@attrs.define
class _Resolved:
    """A container path resolved in scope: `cpath` (symlink-free), `fd` (an O_PATH handle of
    the object itself; None when it does not exist), `parent` (the handle of the directory
    holding it under `name`; None for the root of the rootfs or of a mount, and below a
    missing directory). Owns its handles: close() it."""

    cpath: str
    name: str
    fd: int | None
    parent: int | None

    def close(self) -> None:
        for fd in (self.fd, self.parent):
            if fd is not None:
                os.close(fd)
        self.fd = self.parent = None

    def __enter__(self) -> _Resolved:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stat(self) -> os.stat_result:
        """lstat of the object (FileNotFoundError when missing)."""
        if self.fd is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.cpath)
        return os.fstat(self.fd)


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
        """Host path of a symlink-free, normalised container path (for messages and tests;
        the operations go through handles)."""
        mount = self.mount_for(cpath)
        if mount is None:
            base, rel = self.rootfs, cpath.lstrip("/")
        else:
            base, rel = mount[1], cpath[len(mount[0]):].lstrip("/")
        return os.path.join(base, rel) if rel else base

    def is_mount_point(self, cpath: str) -> bool:
        return any(m[0] == cpath for m in self.mounts)

    def open_top(self, cpath: str) -> int:
        """A handle of the rootfs ("/") or of the host directory (or file) mounted at `cpath`:
        trusted host paths, the daemon's own."""
        if cpath == "/" and not self.is_mount_point("/"):
            return os.open(self.rootfs, _PATH_FLAGS | os.O_DIRECTORY)
        return os.open(self.host(cpath), os.O_PATH | os.O_CLOEXEC)

    def resolve(self, path: str, follow_final: bool = True) -> _Resolved:
        """Walk `path` as the container sees it, one handle per directory. A missing
        component and everything after it stay in the result's `cpath` as given (`..`
        still climbs): the object is then missing (fd None)."""
        todo = deque(c for c in path.split("/") if c)
        stack: list[tuple[str, int | None]] = [("/", self.open_top("/"))]
        links = 0
        try:
            while todo:
                comp = todo.popleft()
                if comp == ".":
                    continue
                if comp == "..":
                    if len(stack) > 1:
                        _close(stack.pop()[1])
                    continue
                here, here_fd = stack[-1]
                candidate = posixpath.join(here, comp)
                if self.is_mount_point(candidate):
                    try:
                        stack.append((candidate, self.open_top(candidate)))
                    except FileNotFoundError:
                        stack.append((candidate, None))  # its host directory is gone
                    continue
                fd = None
                if here_fd is not None:
                    try:
                        fd = os.open(comp, _PATH_FLAGS, dir_fd=here_fd)
                    except (FileNotFoundError, NotADirectoryError):
                        pass
                if fd is None or (not todo and not follow_final) or not stat_mod.S_ISLNK(os.fstat(fd).st_mode):
                    stack.append((candidate, fd))
                    continue
                try:
                    target = os.readlink("", dir_fd=fd)  # the link this handle holds
                finally:
                    os.close(fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    raise errors.InvalidParameter(f"too many levels of symbolic links: {path}")
                if target.startswith("/"):
                    while len(stack) > 1:
                        _close(stack.pop()[1])
                todo.extendleft(reversed([c for c in target.split("/") if c]))
            cpath, fd = stack.pop()
            parent = None
            if stack and not self.is_mount_point(cpath):
                parent = stack.pop()[1]
            return _Resolved(cpath, posixpath.basename(cpath) or "/", fd, parent)
        finally:
            for _, fd in stack:  # what the result does not own
                _close(fd)


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _reopen(fd: int, flags: int) -> int:
    """Open the very object an O_PATH handle holds (through its /proc/self/fd link, which
    names that inode, not a path)."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


def resolve_in_container(
    rootfs: str, mounts: Sequence[Mount], path: str, follow_final_symlink: bool = True
) -> str:
    """The host path of container `path`, resolved as the container sees it (never outside
    the rootfs or a mount's host dir). Blocking: call from a worker thread."""
    scope = _Scope(rootfs, mounts)
    with scope.resolve(path, follow_final_symlink) as found:
        return scope.host(found.cpath)


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


def _stat(scope: _Scope, path: str, container_id: str) -> PathStat:
    if not path:
        raise errors.InvalidParameter("must specify path parameter")
    abs_path = _abs_container_path(path)
    with scope.resolve(abs_path, follow_final=_trailing_means_follow(path)) as found:
        try:
            st = found.stat()
        except FileNotFoundError:
            raise _not_found(path, container_id) from None
    link_target = ""
    if stat_mod.S_ISLNK(st.st_mode):
        with scope.resolve(abs_path, follow_final=True) as target:
            link_target = target.cpath
    return PathStat(name=_go_base(abs_path), size=st.st_size, mode=go_file_mode(st.st_mode),
                    mtime_ns=st.st_mtime_ns, link_target=link_target)


def stat_path(rootfs: str, mounts: Sequence[Mount], path: str, container_id: str = "") -> PathStat:
    """The PathStat of `path` (the last component not followed, unless the path ends in "/"
    or "/."). Blocking."""
    return _stat(_Scope(rootfs, mounts), path, container_id)


# --- archive out --------------------------------------------------------------------------
def _walk(scope: _Scope, cpath: str, fd: int, arcname: str) -> Iterator[tuple[str, int, os.stat_result]]:
    """(arcname, handle, lstat) of the object `fd` holds (at container path `cpath`) and, for
    a directory, of everything below it — in the container's view: bind mounts below cpath
    are entered, symlinks are not followed. Each handle is valid until the next step."""
    st = os.fstat(fd)
    yield arcname, fd, st
    if not stat_mod.S_ISDIR(st.st_mode):
        return
    try:
        listing = _reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        names = set(os.listdir(listing))
        for mpath, _, _ in scope.mounts:  # mount points the rootfs dir may not show
            if mpath != cpath and posixpath.dirname(mpath) == cpath:
                names.add(posixpath.basename(mpath))
        prefix = "" if arcname == "/" else arcname.rstrip("/")
        for name in sorted(names):
            child = posixpath.join(cpath, name)
            try:
                child_fd = scope.open_top(child) if scope.is_mount_point(child) else \
                    os.open(name, _PATH_FLAGS, dir_fd=listing)
            except (FileNotFoundError, NotADirectoryError):
                continue  # gone since the listing
            try:
                yield from _walk(scope, child, child_fd, f"{prefix}/{name}")
            finally:
                os.close(child_fd)
    finally:
        os.close(listing)


@functools.lru_cache(maxsize=512)
def _owner_name(of_group: bool, number: int) -> str:
    """The host's name for a uid or gid, as Go's tar.FileInfoHeader puts it in dockerd's headers."""
    try:
        return grp.getgrgid(number).gr_name if of_group else pwd.getpwuid(number).pw_name
    except KeyError:
        return ""


def _tarinfo(arcname: str, fd: int, st: os.stat_result, hardlinks: dict) -> tarfile.TarInfo:
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
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink("", dir_fd=fd)
    elif stat_mod.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat_mod.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:  # sockets are skipped, as Docker does
        raise ValueError("unsupported file type")
    return info


def _tar_stream(scope: _Scope, path: str, arcname: str) -> Iterator[bytes]:
    """A tar of container `path` (resolved as `_stat` does, at the first step) as ~_CHUNK
    byte pieces. Synchronous; step it in a worker thread."""
    buf = bytearray()
    hardlinks: dict = {}
    with scope.resolve(_abs_container_path(path), follow_final=_trailing_means_follow(path)) as found:
        for name, fd, st in _walk(scope, found.cpath, found.fd, arcname) if found.fd is not None else ():
            try:
                info = _tarinfo(name, fd, st, hardlinks)
            except (ValueError, OSError):
                continue
            if info.type == tarfile.REGTYPE:
                try:
                    content = _reopen(fd, os.O_RDONLY)
                except OSError:
                    continue
                with os.fdopen(content, "rb") as f:
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
    stat = await trio.to_thread.run_sync(_stat, scope, path, container_id)
    gen = _tar_stream(scope, path, _go_base(_abs_container_path(path)))

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
    """Writes archive entries below `dest` (a symlink-free container path), each through the
    handle of its resolved parent directory."""

    def __init__(self, scope: _Scope, dest: str, no_overwrite_dir_non_dir: bool, readonly_rootfs: bool):
        self.scope = scope
        self.dest = dest
        self.no_overwrite = no_overwrite_dir_non_dir
        self.readonly_rootfs = readonly_rootfs
        self.is_root = os.geteuid() == 0
        self.dir_times: list[tuple[str, int]] = []  # (container path, mtime), set at the end

    def check_writable(self, cpath: str) -> None:
        mount = self.scope.mount_for(cpath)
        if mount is not None:
            if mount[2]:
                raise errors.Forbidden("mounted volume is marked read-only")
        elif self.readonly_rootfs:
            raise errors.Forbidden("container rootfs is marked read-only")

    def ensure_dir(self, parts: list[str]) -> _Resolved:
        """Resolve (in scope) and create the parent directories → the parent, resolved."""
        cpath = self.dest
        found = None
        try:
            for comp in parts:
                if found is not None:
                    found.close()
                found = self.scope.resolve(posixpath.join(cpath, comp), follow_final=True)
                cpath = found.cpath
                if found.fd is None:
                    if found.parent is None:
                        raise FileNotFoundError(errno.ENOENT, "a directory above it vanished", cpath)
                    self.check_writable(cpath)
                    os.mkdir(found.name, 0o755, dir_fd=found.parent)
                    found.fd = os.open(found.name, _PATH_FLAGS | os.O_DIRECTORY, dir_fd=found.parent)
                elif not stat_mod.S_ISDIR(found.stat().st_mode):
                    raise errors.InvalidParameter(f"cannot extract below {cpath}: not a directory")
            return found if found is not None else self.scope.resolve(cpath)
        except BaseException:
            if found is not None:
                found.close()
            raise

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _clean_member_name(member.name)
        if not parts:
            return  # "./": the extraction point itself is left as it is
        with self.ensure_dir(parts[:-1]) as parent:
            if parent.fd is None:
                raise FileNotFoundError(errno.ENOENT, "the extraction point vanished", parent.cpath)
            self._extract_into(tar, member, parent, parts[-1])

    def _extract_into(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: _Resolved, name: str) -> None:
        """Create `name` in the directory `parent` holds, as `member` says."""
        cpath = posixpath.join(parent.cpath, name)
        self.check_writable(cpath)
        is_dir = member.isdir()
        at = parent.fd
        mount_point = self.scope.is_mount_point(cpath)
        try:
            if mount_point:
                with _Resolved(cpath, name, self.scope.open_top(cpath), None) as mounted:
                    existing = mounted.stat()
            else:
                existing = os.stat(name, dir_fd=at, follow_symlinks=False)
        except FileNotFoundError:
            if mount_point:
                raise errors.InvalidParameter(f"cannot replace mount point {cpath}") from None
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
                if mount_point:
                    raise errors.InvalidParameter(f"cannot replace mount point {cpath}")
                if existing_dir:
                    shutil.rmtree(name, dir_fd=at)  # its fd-based walk follows no symlink
                else:
                    os.unlink(name, dir_fd=at)
            elif mount_point:  # the mounted directory takes the entry's metadata
                with _Resolved(cpath, name, self.scope.open_top(cpath), None) as mounted:
                    self.apply_metadata(member, cpath, mounted.fd)
                return
        if is_dir:
            if existing is None or not stat_mod.S_ISDIR(existing.st_mode):
                os.mkdir(name, 0o700, dir_fd=at)
        elif member.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=at)
            with os.fdopen(fd, "wb") as out:
                source = tar.extractfile(member)
                while True:
                    data = source.read(_CHUNK)
                    if not data:
                        break
                    out.write(data)
                out.flush()
                self.apply_metadata(member, cpath, fd)  # the file we wrote, whatever its name holds now
            return
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=at)  # interpreted in the container's scope later
            mtime_ns = int(member.mtime * 1_000_000_000)
            with contextlib.suppress(OSError):  # by name, following nothing: whatever is there now
                if self.is_root:
                    os.chown(name, member.uid, member.gid, dir_fd=at, follow_symlinks=False)
                os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=at, follow_symlinks=False)
            return
        elif member.islnk():
            target_parts = _clean_member_name(member.linkname)
            with self.scope.resolve(posixpath.join(self.dest, *target_parts), follow_final=False) as target:
                if target.fd is None or target.parent is None:
                    raise FileNotFoundError(errno.ENOENT, "hard link target not found", member.linkname)
                os.link(target.name, name, src_dir_fd=target.parent, dst_dir_fd=at, follow_symlinks=False)
            return  # a hard link shares the target's metadata
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=at)
        elif member.ischr() or member.isblk():
            kind = stat_mod.S_IFCHR if member.ischr() else stat_mod.S_IFBLK
            os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=at)
        else:
            return  # other types (GNU volume headers…) are ignored
        try:
            fd = os.open(name, _PATH_FLAGS, dir_fd=at)
        except FileNotFoundError:
            return  # removed from inside the container meanwhile
        try:
            self.apply_metadata(member, cpath, fd)
        finally:
            os.close(fd)

    def apply_metadata(self, member: tarfile.TarInfo, cpath: str, fd: int) -> None:
        """Owner, mode and mtime of a (non-symlink) entry, on the object `fd` holds — left
        alone when that is a symlink now (swapped in from inside the container)."""
        if stat_mod.S_ISLNK(os.fstat(fd).st_mode):
            return
        # An O_PATH handle takes no f* call: its /proc/self/fd link names that inode, not a path.
        target = fd if not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_PATH else f"/proc/self/fd/{fd}"
        if self.is_root:
            with contextlib.suppress(OSError):
                os.chown(target, member.uid, member.gid)
        os.chmod(target, member.mode & 0o7777)
        mtime_ns = int(member.mtime * 1_000_000_000)
        if member.isdir():
            self.dir_times.append((cpath, mtime_ns))  # after the children are written
        else:
            with contextlib.suppress(OSError):
                os.utime(target, ns=(mtime_ns, mtime_ns))

    def finish(self) -> None:
        for cpath, mtime_ns in reversed(self.dir_times):
            with contextlib.suppress(OSError, errors.EngineError), self.scope.resolve(cpath, follow_final=False) as found:
                if found.fd is not None and stat_mod.S_ISDIR(found.stat().st_mode):
                    os.utime(f"/proc/self/fd/{found.fd}", ns=(mtime_ns, mtime_ns))


def _prepare_extract(scope: _Scope, path: str, container_id: str, readonly_rootfs: bool) -> str:
    if not path:
        raise errors.InvalidParameter("must specify path parameter")
    with scope.resolve(_abs_container_path(path), follow_final=True) as found:
        try:
            st = found.stat()
        except FileNotFoundError:
            raise _not_found(path, container_id) from None
        cpath = found.cpath
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
