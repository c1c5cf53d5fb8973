"""`cp`: copy files between a container and the local filesystem, with docker's rules for
where things land (copy into an existing directory, rename onto a new path, "/." = contents).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat as statmod
import sys
import tarfile
import tempfile
from typing import Any, Iterator

from ._app import Cli, CommandError, alias, arg, command
from ._client import ClientError

GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27


def split_spec(spec: str) -> tuple[str | None, str]:
    """"ctr:/path" -> ("ctr", "/path"); local paths (incl. "./a:b", "/a:b") -> (None, path)."""
    if spec.startswith((".", "/")) or ":" not in spec:
        return None, spec
    ctr, _, path = spec.partition(":")
    return ctr, path


def path_stat(header: str | None) -> dict[str, Any] | None:
    """Decode the X-Docker-Container-Path-Stat header (base64 JSON)."""
    if not header:
        return None
    try:
        return json.loads(base64.b64decode(header))
    except (ValueError, TypeError):
        return None


def stat_is_dir(st: dict[str, Any] | None) -> bool:
    if not st:
        return False
    mode = int(st.get("mode", 0))
    return bool(mode & GO_MODE_DIR) or statmod.S_ISDIR(mode & 0o170000)


def _rebase(name: str, old: str, new: str) -> str | None:
    """Rename the top entry `old` of a member path to `new` ("" = drop it)."""
    name = name.lstrip("/")
    if old in ("", "."):
        return os.path.join(new, name) if new else name
    if name == old or name == old + "/":
        return new or None
    if name.startswith(old + "/"):
        rest = name[len(old) + 1 :]
        return os.path.join(new, rest) if new else rest
    return os.path.join(new, name) if new else name


class _Tar(tarfile.TarFile):
    keep_owner = False

    def chown(self, tarinfo, targetpath, numeric_owner):  # type: ignore[override]
        if self.keep_owner:
            super().chown(tarinfo, targetpath, numeric_owner)


def extract_archive(fileobj, src_name: str, dest_dir: str, new_name: str,
                    keep_owner: bool = False) -> None:
    tar = _Tar.open(fileobj=fileobj, mode="r|*")
    tar.keep_owner = keep_owner
    with tar:
        for member in tar:
            name = _rebase(member.name, src_name, new_name)
            if not name:
                continue
            member.name = name
            if member.islnk():
                member.linkname = _rebase(member.linkname, src_name, new_name) or member.linkname
            tar.extract(member, dest_dir, filter="tar")


class _Reader:
    """File-like over an iterator of bytes (a streamed response body)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._it = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


def copy_from(cli: Cli, ctr: str, src: str, dest: str, keep_owner: bool) -> None:
    with cli.client.stream("GET", f"/containers/{ctr}/archive", params={"path": src}) as resp:
        if dest == "-":
            for chunk in resp.iter_raw():
                cli.write_bytes(chunk, 1)
            return
        st = path_stat(resp.headers.get("X-Docker-Container-Path-Stat")) or {}
        src_name = st.get("name") or os.path.basename(src.rstrip("/")) or "."
        src_is_dir = stat_is_dir(st)
        contents_only = src.endswith("/.") or src == "."
        if os.path.isdir(dest):
            dest_dir, new_name = dest, ("" if contents_only and src_is_dir else src_name)
        elif os.path.exists(dest):
            if src_is_dir:
                raise CommandError(f"cannot copy a directory to a file: {dest}")
            dest_dir, new_name = os.path.dirname(dest) or ".", os.path.basename(dest)
        else:
            if dest.endswith("/") and not src_is_dir:
                raise CommandError(f"destination directory {dest} does not exist")
            parent = os.path.dirname(dest.rstrip("/")) or "."
            if not os.path.isdir(parent):
                raise CommandError(f"destination directory {parent} does not exist")
            dest_dir, new_name = parent, os.path.basename(dest.rstrip("/"))
        extract_archive(_Reader(resp.iter_raw()), src_name, dest_dir, new_name, keep_owner)


def build_archive(src: str, arcname: str, follow: bool = False) -> tempfile.SpooledTemporaryFile:
    """Tar `src` (a file or a directory) with its top entry named `arcname` ("" = contents)."""
    out = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    with tarfile.open(fileobj=out, mode="w", dereference=follow, format=tarfile.PAX_FORMAT) as tar:
        if arcname:
            tar.add(src, arcname=arcname)
        else:
            for entry in sorted(os.listdir(src)):
                tar.add(os.path.join(src, entry), arcname=entry)
    out.seek(0)
    return out


def _file_chunks(f, size: int = 1 << 16) -> Iterator[bytes]:
    while True:
        data = f.read(size)
        if not data:
            return
        yield data


def copy_to(cli: Cli, src: str, ctr: str, dest: str, follow: bool, keep_owner: bool) -> None:
    params = {"path": dest, "noOverwriteDirNonDir": True, "copyUIDGID": keep_owner or None}
    if src == "-":
        cli.client.request("PUT", f"/containers/{ctr}/archive", params=params,
                           content=_file_chunks(sys.stdin.buffer),
                           headers={"Content-Type": "application/x-tar"})
        return
    if not os.path.lexists(src):
        raise CommandError(f"lstat {os.path.abspath(src)}: no such file or directory")
    src_is_dir = os.path.isdir(src) if follow or not os.path.islink(src) else False
    contents_only = src.endswith("/.") and src_is_dir
    src_name = os.path.basename(os.path.normpath(src))
    try:
        resp = cli.client.head(f"/containers/{ctr}/archive", params={"path": dest})
        dst = path_stat(resp.headers.get("X-Docker-Container-Path-Stat")) or {"mode": GO_MODE_DIR}
    except ClientError as exc:
        if not exc.not_found or exc.message.lower().startswith("no such container"):
            raise
        dst = None
    if dst is not None and stat_is_dir(dst):
        target, arcname = dest, ("" if contents_only else src_name)
    elif dst is not None:
        if src_is_dir:
            raise CommandError(f"Error response from daemon: cannot overwrite non-directory "
                               f"{dest} with directory {src}")
        target, arcname = os.path.dirname(dest) or "/", os.path.basename(dest)
    else:
        if dest.endswith("/") and not src_is_dir:
            raise CommandError(f"Error response from daemon: no such directory: {dest}")
        target = os.path.dirname(dest.rstrip("/")) or "/"
        arcname = os.path.basename(dest.rstrip("/"))
    params["path"] = target
    with build_archive(src, arcname, follow) as f:
        cli.client.request("PUT", f"/containers/{ctr}/archive", params=params,
                           content=_file_chunks(f), headers={"Content-Type": "application/x-tar"})


@command("cp", "Copy files/folders between a container and the local filesystem",
         arg("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid)"),
         arg("-L", "--follow-link", action="store_true", help="Follow symbolic links in SRC"),
         arg("-q", "--quiet", action="store_true", help="Suppress progress output"),
         arg("src"), arg("dest"),
         usage="pyengine cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
               "       pyengine cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
def cp(cli: Cli, a: argparse.Namespace) -> int:
    sctr, spath = split_spec(a.src)
    dctr, dpath = split_spec(a.dest)
    if sctr and dctr:
        raise CommandError("copying between containers is not supported")
    if not sctr and not dctr:
        raise CommandError("must specify at least one container source")
    if sctr:
        copy_from(cli, sctr, spath, dpath, a.archive)
    else:
        copy_to(cli, spath, dctr, dpath, a.follow_link, a.archive)
    return 0


alias("container cp", "cp")
