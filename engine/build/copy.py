"""COPY and ADD into a mounted rootfs, with Docker's destination rules: a destination ending
in "/" (or several sources) is a directory; a directory source copies its contents; a file
goes inside an existing directory; missing parents are created; everything is owned by
root or by --chown; modes and times are kept. ADD also unpacks local tar archives.

Destinations are resolved inside the rootfs, so an image's symlinks cannot lead a copy out."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile

import attrs

from engine.errors import InvalidParameter
from engine.scope import resolve_in_root


@attrs.frozen
class Owner:
    uid: int = 0
    gid: int = 0


def destination(dest: str, workdir: str) -> tuple[str, bool]:
    """(absolute destination, must be a directory) for a COPY/ADD destination as written."""
    is_dir = dest.endswith("/") or dest.endswith("/.") or dest == "."
    if not dest.startswith("/"):
        dest = posixpath.join(workdir or "/", dest)
    clean = posixpath.normpath(dest)
    return (clean if clean.startswith("/") else "/" + clean), is_dir


def _mkdir_p(rootfs: str, path: str, owner: Owner) -> str:
    """Create `path` (absolute, inside the rootfs) and any missing parent; new directories
    get 0755 and the owner. Returns the host path."""
    current = "/"
    host = rootfs
    for part in [p for p in path.split("/") if p]:
        current = posixpath.join(current, part)
        host = resolve_in_root(rootfs, current)
        if not os.path.lexists(host):
            os.mkdir(host, 0o755)
            os.chmod(host, 0o755)
            os.lchown(host, owner.uid, owner.gid)
        elif not os.path.isdir(host):
            raise InvalidParameter(f"cannot copy to {path}: {current} is not a directory")
    return host


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _copy_entry(src: str, dst: str, owner: Owner, chmod: int | None) -> None:
    st = os.lstat(src)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        if os.path.lexists(dst) and not (os.path.isdir(dst) and not os.path.islink(dst)):
            _remove(dst)
        if not os.path.lexists(dst):
            os.mkdir(dst, 0o700)
        for name in sorted(os.listdir(src)):
            _copy_entry(os.path.join(src, name), os.path.join(dst, name), owner, chmod)
        os.chmod(dst, chmod if chmod is not None else stat.S_IMODE(mode))
        os.lchown(dst, owner.uid, owner.gid)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        return
    if os.path.lexists(dst):
        _remove(dst)
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
        os.lchown(dst, owner.uid, owner.gid)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    if stat.S_ISREG(mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
    else:
        return  # sockets, fifos, devices are not copied
    os.chown(dst, owner.uid, owner.gid)
    os.chmod(dst, chmod if chmod is not None else stat.S_IMODE(mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def is_archive(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    try:
        with tarfile.open(path, "r:*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _extract_archive(archive: str, rootfs: str, dest: str) -> None:
    """ADD's local tar auto-extraction into `dest` (inside the rootfs): entries keep their
    modes and owners; none may leave the destination."""
    from .context import extract_tar

    host = _mkdir_p(rootfs, dest, Owner())
    with tarfile.open(archive, "r:*") as tf:
        owners = {posixpath.normpath("/" + m.name).lstrip("/"): (m.uid, m.gid) for m in tf.getmembers()}
    extract_tar(archive, host)
    for rel, (uid, gid) in owners.items():
        if not rel:
            continue
        path = os.path.join(host, rel)
        if os.path.lexists(path):
            os.lchown(path, uid, gid)


def copy_sources(rootfs: str, sources: list[tuple[str, str]], dest: str, workdir: str, *,
                 owner: Owner = Owner(), chmod: int | None = None, extract: bool = False,
                 what: str = "COPY") -> None:
    """Copy host `sources` [(host path, name)] to `dest` (as written in the Dockerfile)."""
    path, dest_is_dir = destination(dest, workdir)
    if len(sources) > 1 and not dest_is_dir:
        raise InvalidParameter(f"When using {what} with more than one source file, the destination "
                               "must be a directory and end with a /")
    for src, name in sources:
        if extract and is_archive(src):
            _extract_archive(src, rootfs, path)
            continue
        if os.path.isdir(src):
            target = _mkdir_p(rootfs, path, owner)
            for entry in sorted(os.listdir(src)):
                _copy_entry(os.path.join(src, entry), os.path.join(target, entry), owner, chmod)
            continue
        existing = resolve_in_root(rootfs, path)
        if dest_is_dir or (os.path.isdir(existing) and path != "/") or path == "/":
            parent = _mkdir_p(rootfs, path, owner)
            target = os.path.join(parent, posixpath.basename(name.rstrip("/")) or os.path.basename(src))
        else:
            parent = _mkdir_p(rootfs, posixpath.dirname(path), owner)
            target = os.path.join(parent, posixpath.basename(path))
        _copy_entry(src, target, owner, chmod)
