"""Thin wrapper over engine._native (cffi): builds the flat `struct pe_spec` and turns
negative errno returns into OSError. No protocol logic here (that is spawn.py)."""
from __future__ import annotations

import os

import attrs

from engine._native import ffi, lib

STEP_NAMES: dict[int, str] = {
    getattr(lib, name): name[len("PE_STEP_"):].lower() for name in dir(lib) if name.startswith("PE_STEP_")
}
MODE_CONTAINER = lib.PE_MODE_CONTAINER
MODE_EXEC = lib.PE_MODE_EXEC
ERR_SIZE = ffi.sizeof("struct pe_err")
RLIM_INFINITY = (1 << 64) - 1
SOCK_FILTER_SIZE = 8  # struct sock_filter {u16 code; u8 jt, jf; u32 k}


def _check(rc: int, what: str, path: str | None = None) -> int:
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}", path)
    return rc


@attrs.define
class CSpec:
    """A `struct pe_spec *` plus every cffi buffer it points into (kept alive with it)."""

    ptr: object
    keep: list


#: C copies of what is the same for every container with the same profile (default mount
#: targets and options, device nodes, symlinks, masked and read-only paths): built once and
#: shared by every spec (neither pe_spawn nor pe_spec_pack writes into a spec). Bounded: user
#: mount targets are in it too, so it is emptied when it grows past _CONST_MAX.
_const_strs: dict[str, object] = {}
_const_arrays: dict[tuple, object] = {}
_CONST_MAX = 4096


def _const_str(s: str):
    buf = _const_strs.get(s)
    if buf is None:
        if len(_const_strs) >= _CONST_MAX:
            _const_strs.clear()
            _const_arrays.clear()
        buf = _const_strs[s] = ffi.new("char[]", os.fsencode(s))
    return buf


def _const_strv(items: tuple) -> tuple:
    """(char *[] (not NULL-terminated) of constant strings, what it points into), shared
    while the cache holds."""
    key = ("strv", items)
    entry = _const_arrays.get(key)
    if entry is None:
        strs = [_const_str(x) for x in items]
        arr = ffi.new("char *[]", max(len(items), 1))
        for i, buf in enumerate(strs):
            arr[i] = buf
        _const_arrays[key] = entry = (arr, strs)
    return entry


def _const_devices(devices: tuple) -> tuple:
    key = ("devices", devices)
    entry = _const_arrays.get(key)
    if entry is None:
        strs = [_const_str(d.path) for d in devices]
        cd = ffi.new("struct pe_device[]", max(len(devices), 1))
        for i, d in enumerate(devices):
            cd[i].path = strs[i]
            cd[i].type = ord(d.type)
            cd[i].major, cd[i].minor, cd[i].mode = d.major, d.minor, d.mode
            cd[i].uid, cd[i].gid = d.uid, d.gid
        _const_arrays[key] = entry = (cd, strs)
    return entry


_MOUNT_SIZE = ffi.sizeof("struct pe_mount")


def _const_mount(source: str | None, target: str, fstype: str | None, flags: int, propagation: int,
                 data: str) -> tuple:
    """(a struct pe_mount[1], what it points into) for one mount of a profile, copied into
    each spec with one memmove (`source` None: a bind's, set per spec)."""
    key = ("mount", source, target, fstype, flags, propagation, data)
    entry = _const_arrays.get(key)
    if entry is None:
        strs = [_const_str(target)] + [_const_str(s) for s in (source, fstype, data) if s]
        m = ffi.new("struct pe_mount[1]")
        m[0].source = _const_str(source) if source else ffi.NULL
        m[0].target = _const_str(target)
        m[0].fstype = _const_str(fstype) if fstype else ffi.NULL
        m[0].flags = flags
        m[0].propagation = propagation
        m[0].data = _const_str(data) if data else ffi.NULL
        _const_arrays[key] = entry = (m, strs)
    return entry


class _Builder:
    def __init__(self) -> None:
        self.keep: list = []

    def str(self, s: str | None):
        if s is None:
            return ffi.NULL
        buf = ffi.new("char[]", os.fsencode(s))
        self.keep.append(buf)
        return buf

    def const(self, s: str | None):
        """A string that recurs across containers (see _const_strs)."""
        if s is None:
            return ffi.NULL
        buf = _const_str(s)
        self.keep.append(buf)  # survives a clear of the cache while this spec lives
        return buf

    def const_strv(self, items) -> object:
        entry = _const_strv(tuple(items))
        self.keep.append(entry)  # survives a clear of the cache while this spec lives
        return entry[0]

    def strv(self, items, null_terminated: bool = True):
        arr = ffi.new("char *[]", len(items) + (1 if null_terminated else 0))
        for i, s in enumerate(items):
            arr[i] = self.str(s)
        self.keep.append(arr)
        return arr

    def array(self, ctype: str, items):
        arr = ffi.new(f"{ctype}[]", max(len(items), 1))
        for i, v in enumerate(items):
            arr[i] = v
        self.keep.append(arr)
        return arr


def build_spec(*, mode: int, use_helper: bool, clone_flags: int, unshare_cgroup: bool,
               joins: list[tuple[int, int]], rootfs: str | None, readonly_rootfs: bool,
               hostname: str | None, mounts: list[tuple[str, str, str | None, int, int, str]],
               devices, symlinks, masked, readonly, argv, envp, cwd: str, uid: int, gid: int,
               groups, caps: int, no_new_privileges: bool, rlimits, stdio: tuple[int, int, int],
               tty: bool, tty_size: tuple[int, int] | None, seccomp: bytes | None = None,
               cgroup_tasks=(), oom_score_adj: int = 0, sysctls=(),
               exec_signals_blocked: bool = False) -> CSpec:
    b = _Builder()
    s = ffi.new("struct pe_spec *")
    b.keep.append(s)
    s.mode = mode
    s.use_helper = int(use_helper)
    s.clone_flags = clone_flags
    s.unshare_cgroup = int(unshare_cgroup)
    s.join_fds = b.array("int", [fd for fd, _ in joins])
    s.join_types = b.array("int", [t for _, t in joins])
    s.njoin = len(joins)
    s.rootfs = b.str(rootfs)
    s.readonly_rootfs = int(readonly_rootfs)
    s.hostname = b.str(hostname) if hostname else ffi.NULL

    cm = ffi.new("struct pe_mount[]", max(len(mounts), 1))
    b.keep.append(cm)
    keep, memmove = b.keep, ffi.memmove
    for i, (source, target, fstype, flags, propagation, data) in enumerate(mounts):
        # A filesystem's source ("proc", "tmpfs"…) recurs; a bind's is the container's own.
        entry = _const_mount(source if fstype else None, target, fstype, flags, propagation, data)
        keep.append(entry)  # survives a clear of the cache while this spec lives
        memmove(cm + i, entry[0], _MOUNT_SIZE)
        if not fstype:
            cm[i].source = b.str(source)
    s.mounts = cm
    s.nmounts = len(mounts)

    devices = tuple(devices)
    entry = _const_devices(devices)
    keep.append(entry)
    s.devices = entry[0]
    s.ndevices = len(devices)
    s.symlink_paths = b.const_strv([p for p, _ in symlinks])
    s.symlink_targets = b.const_strv([t for _, t in symlinks])
    s.nsymlinks = len(symlinks)
    s.masked_paths = b.const_strv(masked)
    s.nmasked = len(masked)
    s.readonly_paths = b.const_strv(readonly)
    s.nreadonly = len(readonly)

    s.argv = b.strv(list(argv))
    s.envp = b.strv(list(envp))
    s.cwd = b.str(cwd) if cwd else ffi.NULL
    s.uid, s.gid = uid, gid
    s.groups = b.array("uint32_t", list(groups))
    s.ngroups = len(groups)
    s.caps = caps
    s.no_new_privileges = int(no_new_privileges)
    s.exec_signals_blocked = int(exec_signals_blocked)
    if seccomp:
        if len(seccomp) % SOCK_FILTER_SIZE:
            raise ValueError("seccomp program: not a whole number of sock_filter instructions")
        prog = ffi.new("unsigned char[]", seccomp)
        b.keep.append(prog)
        s.seccomp_prog = prog
        s.seccomp_len = len(seccomp) // SOCK_FILTER_SIZE
    rl = ffi.new("struct pe_rlimit[]", max(len(rlimits), 1))
    b.keep.append(rl)
    for i, (resource, soft, hard) in enumerate(rlimits):
        rl[i].resource = resource
        rl[i].soft = RLIM_INFINITY if soft < 0 else soft
        rl[i].hard = RLIM_INFINITY if hard < 0 else hard
    s.rlimits = rl
    s.nrlimits = len(rlimits)
    s.stdin_fd, s.stdout_fd, s.stderr_fd = stdio
    s.tty = int(tty)
    s.cgroup_tasks = b.strv(list(cgroup_tasks), False)
    s.ncgroup_tasks = len(cgroup_tasks)
    s.oom_score_adj = oom_score_adj
    s.sysctl_paths = b.strv([sysctl_path(k) for k, _ in sysctls], False)
    s.sysctl_values = b.strv([v for _, v in sysctls], False)
    s.nsysctl = len(sysctls)
    if tty_size:
        s.tty_rows, s.tty_cols = tty_size
    return CSpec(s, b.keep)


def sysctl_path(key: str) -> str:
    """net.ipv4.ip_forward → /proc/sys/net/ipv4/ip_forward (runc's rule: dots are separators,
    slashes already are)."""
    return "/proc/sys/" + key.replace(".", "/")


@attrs.frozen
class SpawnResult:
    pid: int
    pidfd: int
    helper_pid: int
    helper_pidfd: int
    pid_r: int
    sync_w: int
    err_r: int
    sock_r: int


def spawn(cspec: CSpec) -> SpawnResult:
    out = ffi.new("struct pe_spawn_result *")
    _check(lib.pe_spawn(cspec.ptr, out), "clone3")
    return SpawnResult(out.pid, out.pidfd, out.helper_pid, out.helper_pidfd, out.pid_r,
                       out.sync_w, out.err_r, out.sock_r)


def release(sync_w: int) -> None:
    """Let the child go (writes the 'G' byte and closes sync_w)."""
    _check(lib.pe_release(sync_w), "release child")


def recv_fd(sock: int) -> int:
    return _check(lib.pe_recv_fd(sock), "receive pty master")


def mount_overlay(lowerdirs: list[str], upperdir: str, workdir: str, target: str) -> None:
    keep = [ffi.new("char[]", os.fsencode(p)) for p in lowerdirs]
    arr = ffi.new("char *[]", keep + [ffi.NULL])
    _check(lib.pe_mount_overlay(arr, len(keep), os.fsencode(upperdir or ""), os.fsencode(workdir or ""),
                                os.fsencode(target)), "mount overlay", target)


def mount_tmpfs(target: str, data: str) -> None:
    _check(lib.pe_mount_tmpfs(os.fsencode(target), os.fsencode(data)), "mount tmpfs", target)


def make_shared(path: str, bind_first: bool) -> None:
    _check(lib.pe_make_shared(os.fsencode(path), int(bind_first)), "make shared", path)


def unmount(target: str) -> None:
    _check(lib.pe_unmount(os.fsencode(target)), "unmount", target)


def remove_tree(path: str) -> None:
    _check(lib.pe_remove_tree(os.fsencode(path)), "remove", path)


def resize(fd: int, rows: int, cols: int) -> None:
    _check(lib.pe_resize(fd, rows, cols), "resize tty")


def pack_spec(cspec: CSpec) -> bytes:
    """The spec as bytes for the spawner process (native/pe_wire.c)."""
    size = lib.pe_spec_pack(cspec.ptr, ffi.NULL, 0)
    buf = ffi.new("unsigned char[]", size)
    lib.pe_spec_pack(cspec.ptr, buf, size)
    return ffi.buffer(buf, size)[:]


# --------------------------------------------------------------------------- host operations
HOP_MKDIR, HOP_RMDIR, HOP_WRITE = lib.PE_HOP_MKDIR, lib.PE_HOP_RMDIR, lib.PE_HOP_WRITE
HOP_OVERLAY, HOP_UNMOUNT, HOP_READ = lib.PE_HOP_OVERLAY, lib.PE_HOP_UNMOUNT, lib.PE_HOP_READ
HOP_MKDIR_IN_ROOT, HOP_RENAME = lib.PE_HOP_MKDIR_IN_ROOT, lib.PE_HOP_RENAME
HOP_EMPTY_EXCEPT, HOP_REMOVE_TREE = lib.PE_HOP_EMPTY_EXCEPT, lib.PE_HOP_REMOVE_TREE
HOP_OK_EXISTS, HOP_OK_MISSING = lib.PE_HOP_OK_EXISTS, lib.PE_HOP_OK_MISSING


def pack_host_op(code: int, flags: int, args) -> bytes:
    """One record of pe_hostops.h: u32 code, flags, nargs, then each argument as a u32
    length and its bytes with a NUL."""
    parts = [int.to_bytes(code, 4, "little"), int.to_bytes(flags, 4, "little"), int.to_bytes(len(args), 4, "little")]
    for arg in args:
        data = (os.fsencode(arg) if isinstance(arg, str) else arg) + b"\0"
        parts += (len(data).to_bytes(4, "little"), data)
    return b"".join(parts)


@attrs.define
class HostOpsJob:
    """A started pe_hostops job: done once `efd` is readable; its buffers live with it."""

    job: object
    keep: list
    efd: int

    def outcome(self) -> tuple[int, int, bytes]:
        """(index of the op that failed or -1, its errno, the READ results)."""
        return self.job.failed, self.job.err, bytes(ffi.buffer(self.job.out, self.job.out_len))


#: READ results are written before they are read: no need to clear the room first.
_uncleared = ffi.new_allocator(should_clear_after_alloc=False)


def open_in_root(root: str, path: str) -> int:
    return _check(lib.pe_open_in_root(os.fsencode(root), os.fsencode(path)), "open", os.path.join(root, path))


def mkdir_in_root(root: str, path: str) -> None:
    _check(lib.pe_mkdir_in_root(os.fsencode(root), os.fsencode(path)), "mkdir", os.path.join(root, path))


def start_host_ops(packed: bytes, count: int, efd: int, out_cap: int) -> HostOpsJob:
    job = ffi.new("struct pe_hostops_job *")
    ops = ffi.new("unsigned char[]", packed)
    out = _uncleared("unsigned char[]", max(out_cap, 1))
    job.ops, job.len, job.nops, job.efd = ops, len(packed), count, efd
    job.out, job.out_cap = out, out_cap
    rc = lib.pe_hostops_start(job)
    if rc:
        raise OSError(rc, f"starting a host-operations thread: {os.strerror(rc)}")
    return HostOpsJob(job, [ops, out], efd)
