"""Host operations for the hot path of start, exit and removal — overlay mount, cgroup
directories and files, unmount, emptying or deleting a removed container's directory — run
in order on a native thread (native/pe_hostops.c) while the event loop waits on an eventfd.

A Python worker thread would do: but it takes the GIL back after each syscall, and under a
burst of starts, when the loop holds the GIL most of the time, a start's ~30 quick syscalls
took milliseconds in a worker thread (p50 1.8 ms against 0.6 ms run directly, plus the hop
there and back, ~4 ms more) and a 400-container burst ran ~15% fewer containers/s. A list of
operations has no Python in it: one eventfd wake-up, whatever the loop is doing.
"""
from __future__ import annotations

import os

import attrs
import trio

from engine.runtime import _native

#: Room for READ results (a passwd and a group file): more fails the list with EFBIG.
READ_MAX = 256 * 1024


@attrs.frozen
class Mkdir:
    path: str
    mode: int = 0o755
    exist_ok: bool = False

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_MKDIR, _native.HOP_OK_EXISTS if self.exist_ok else 0,
                                    (self.path, str(self.mode)))


@attrs.frozen
class MkdirInRoot:
    """mkdir -p of `path` inside `root`, every symlink resolved as if `root` were "/" (a
    container's WorkingDir: the image cannot make it create directories on the host)."""

    root: str
    path: str

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_MKDIR_IN_ROOT, 0, (self.root, self.path))


@attrs.frozen
class Rmdir:
    path: str
    missing_ok: bool = True

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_RMDIR, _native.HOP_OK_MISSING if self.missing_ok else 0, (self.path,))


@attrs.frozen
class Write:
    """One open of `path`, one write(2) per value (cgroupfs takes one entry per write)."""

    path: str
    values: tuple[str, ...]

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_WRITE, 0, (self.path, *self.values))


@attrs.frozen
class MountOverlay:
    target: str
    upper: str
    work: str
    lowers: tuple[str, ...]  # top first

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_OVERLAY, 0, (self.target, self.upper, self.work, *self.lowers))


@attrs.frozen
class Unmount:
    """Lazy; not mounted is no error."""

    target: str

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_UNMOUNT, 0, (self.target,))


@attrs.frozen
class Read:
    """The bytes of `path` resolved inside `root` (symlinks as if `root` were "/") in
    run()'s results; None when it cannot be opened or read."""

    root: str
    path: str

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_READ, 0, (self.root, self.path))


@attrs.frozen
class Rename:
    path: str
    to: str
    missing_ok: bool = False

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_RENAME, _native.HOP_OK_MISSING if self.missing_ok else 0,
                                    (self.path, self.to))


@attrs.frozen
class EmptyExcept:
    """Empty the directory `path` down to its entries named in `dirs`, which must be
    directories on the same file system (not mount points) and are emptied too, those in
    `files` that are plain files linked nowhere else (kept as they are), and those in
    `pristine` that look as the first of `dirs` (a directory, emptied and rid of overlayfs'
    trusted.overlay.* marks) or of `files` does (mode, owner, inode flags and project, no
    extended attributes, no other link); following nothing, like RemoveTree."""

    path: str
    dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    pristine: tuple[str, ...] = ()

    def pack(self) -> bytes:
        kept = [*("d" + n for n in self.dirs), *("f" + n for n in self.files), *("p" + n for n in self.pristine)]
        return _native.pack_host_op(_native.HOP_EMPTY_EXCEPT, 0, (self.path, *kept))


@attrs.frozen
class RemoveTree:
    """`path` and everything under it (engine.runtime.remove_tree); missing is no error."""

    path: str

    def pack(self) -> bytes:
        return _native.pack_host_op(_native.HOP_REMOVE_TREE, 0, (self.path,))


HostOp = Mkdir | MkdirInRoot | Rmdir | Write | MountOverlay | Unmount | Read | Rename | EmptyExcept | RemoveTree


class HostOpError(OSError):
    """The operation `op` failed with `errno`; those before it were done, none after."""

    def __init__(self, op: HostOp, index: int, err: int) -> None:
        super().__init__(err, os.strerror(err), getattr(op, "path", None) or getattr(op, "target", None))
        self.op = op
        self.index = index


async def run(ops: list[HostOp]) -> list[bytes | None]:
    """Run `ops` in order on a native thread; the Read results, in order. HostOpError at the
    first that fails. Like `trio.to_thread.run_sync`, once started it is waited for."""
    efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        reads = sum(type(op) is Read for op in ops)
        job = _native.start_host_ops(b"".join(op.pack() for op in ops), len(ops), efd, READ_MAX if reads else 0)
        with trio.CancelScope(shield=True):  # the thread writes into the job until efd fires
            await trio.lowlevel.wait_readable(efd)
    finally:
        os.close(efd)
    failed, err, out = job.outcome()
    if failed >= 0:
        raise HostOpError(ops[failed], failed, err)
    results: list[bytes | None] = []
    at = 0
    for _ in range(reads):
        n = int.from_bytes(out[at:at + 4], "little")
        at += 4
        if n == 0xFFFFFFFF:
            results.append(None)
        else:
            results.append(out[at:at + n])
            at += n
    return results
