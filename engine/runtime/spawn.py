"""Process creation: drives native's clone3/sync protocol (diagram at the top of
native/pe_spawn.c) from trio without ever blocking the event loop.

    spawn_container(spec, stdio, prepare)  new namespaces + rootfs + exec
    spawn_exec(target_pid, process, stdio)  join a running container (docker exec)
"""
from __future__ import annotations

import os
import signal
import struct
from collections.abc import Awaitable, Callable

import attrs
import trio

from engine import errors
from engine.runtime import _native
from engine.runtime.caps import capability_mask, grantable_capabilities
from engine.runtime.rootfs import DEFAULT_SYMLINKS, parse_mount_options
from engine.runtime.spec import ProcessSpec, RuntimeSpec

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS: dict[str, int] = {
    "mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "pid": CLONE_NEWPID,
    "net": CLONE_NEWNET, "cgroup": CLONE_NEWCGROUP,
}
EXEC_NAMESPACES = ("mnt", "uts", "ipc", "net", "pid", "cgroup")
_CLEANUP_TIMEOUT = 10

Prepare = Callable[[int], Awaitable[None]]


class SpawnError(errors.SystemError_):
    """The container process could not be started. `step` names what failed in the child
    ("mount", "pivot_root", "lookup", …), `errno` the kernel's answer, `exit_code` what
    Docker reports (127 not found, 126 not executable, 128 otherwise)."""

    def __init__(self, step: str, errno: int, message: str, exit_code: int = 128):
        super().__init__(message)
        self.step = step
        self.errno = errno
        self.exit_code = exit_code
        # Docker answers 400 for a bad command, 500 for everything else.
        self.status = 400 if exit_code in (126, 127) else 500


@attrs.define
class Stdio:
    """The child's stdio. tty=False: the caller's fds (None → /dev/null), dup2'ed in the
    child and never closed by us. tty=True: the child allocates a pty in the container's
    devpts and the master comes back as ContainerProcess.pty_master."""

    tty: bool = False
    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None


class ContainerProcess:
    """A spawned process, supervised through its pidfd. Built by spawn_container/spawn_exec."""

    def __init__(self, pid: int, pidfd: int, pty_master: int | None = None):
        self.pid = pid
        self.pidfd = pidfd
        self.pty_master = pty_master  # owned by the caller
        self.returncode: int | None = None
        self._lock = trio.Lock()
        self._polled = False  # the pidfd was given to trio's I/O manager (wait)

    def __repr__(self) -> str:
        return f"<ContainerProcess pid={self.pid} returncode={self.returncode}>"

    def _reap(self) -> None:
        try:
            info = os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
        except ChildProcessError:  # reaped behind our back
            self.returncode = 255
            return
        if info is None:
            return
        if info.si_code == os.CLD_EXITED:
            self.returncode = info.si_status
        else:
            self.returncode = 128 + info.si_status

    async def wait(self) -> int:
        """Exit code, or 128+signal when killed. Idempotent; safe from several tasks."""
        if self.returncode is not None:
            return self.returncode
        async with self._lock:
            while self.returncode is None:
                if self.pidfd < 0:
                    raise RuntimeError("process closed before it was reaped")
                self._polled = True
                await trio.lowlevel.wait_readable(self.pidfd)
                self._reap()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.pidfd < 0 or self.returncode is not None:
            return
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Close the pidfd (not the pty master: the caller owns it)."""
        if self.pidfd >= 0:
            fd, self.pidfd = self.pidfd, -1
            if self._polled:  # else trio never saw it (its exit came another way): no epoll_ctl
                try:
                    trio.lowlevel.notify_closing(fd)
                except RuntimeError:
                    pass
            os.close(fd)


def resize(fd: int, rows: int, cols: int) -> None:
    """Set a pty's window size (TIOCSWINSZ)."""
    _native.resize(fd, rows, cols)


# ───────────────────────────── error messages ─────────────────────────────

def _strerror(err: int) -> str:
    # Go's (and so Docker's) errno strings are lower case.
    text = os.strerror(err)
    return text[:1].lower() + text[1:]


def _exit_code(message: str) -> int:
    # As moby's daemon/start.go does for the runtime's start error.
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 128


def _spawn_error(step_no: int, err: int, index: int, argv0: str, describe: Callable[[str, int], str]) -> SpawnError:
    step = _native.STEP_NAMES.get(step_no, f"step {step_no}")
    es = _strerror(err)
    if step == "lookup":
        message = f'exec: "{argv0}": executable file not found in $PATH'
    elif step == "stat":
        message = f'exec: "{argv0}": stat {argv0}: {es}'
    elif step in ("access", "exec"):
        message = f'exec: "{argv0}": {es}'
    elif step == "chdir":  # runc's words
        message = f"chdir to cwd ({describe(step, index)}) set in config.json failed: {es}"
    else:
        what = describe(step, index)
        message = f"{step.replace('_', ' ')}{' ' + what if what else ''}: {es}"
    return SpawnError(step, err, message, _exit_code(message))


# ───────────────────────────── the protocol ─────────────────────────────

def _close(fd: int) -> None:
    if fd is not None and fd >= 0:
        try:
            trio.lowlevel.notify_closing(fd)
        except RuntimeError:
            pass
        os.close(fd)


async def _read_pid(pid_r: int) -> int | None:
    await trio.lowlevel.wait_readable(pid_r)
    data = os.read(pid_r, 4)
    if len(data) != 4:
        return None
    return struct.unpack("=i", data)[0]


async def _reap_fd(pidfd: int) -> None:
    await trio.lowlevel.wait_readable(pidfd)
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    except ChildProcessError:
        pass


def _read_err(err_r: int) -> tuple[int, int, int] | None:
    data = os.read(err_r, _native.ERR_SIZE)
    if len(data) < _native.ERR_SIZE:
        return None
    return struct.unpack("=iii", data)


class _ChildFailed(Exception):
    """A launcher's report that the child failed before the sync protocol: (step, errno,
    index) as read from the err pipe, or None when nothing was said."""

    def __init__(self, report: tuple[int, int, int] | None):
        super().__init__(report)
        self.report = report


@attrs.define
class Launched:
    """A cloned child waiting on its sync pipe, and the parent's protocol ends; or, `released`,
    a child the launcher let go itself (nothing to prepare) and whose exec it saw succeed, or
    fail as `report` (step, errno, index) says."""

    process: ContainerProcess
    sync_w: int
    err_r: int
    sock_r: int = -1
    released: bool = False
    report: tuple[int, int, int] | None = None


class Launcher:
    """Where the clone happens. This one: in the daemon (engine._native). Another (the
    spawner, engine/runtime/spawner.py) refers to fds by index and clones elsewhere."""

    def fd(self, fd: int) -> int:
        """How the spec refers to one of our fds."""
        return fd

    async def launch(self, cspec: _native.CSpec, use_helper: bool, go: bool = False) -> Launched:
        """`go`: nothing is to be prepared, the launcher may let the child go itself (this one
        does not: the caller releases it)."""
        res = _native.spawn(cspec)
        if not use_helper:
            return Launched(ContainerProcess(res.pid, res.pidfd), res.sync_w, res.err_r, res.sock_r)
        ends = [res.sync_w, res.err_r, res.sock_r]
        pid: int | None = None
        pid_read = False
        try:
            pid = await _read_pid(res.pid_r)
            pid_read = True
            await _reap_fd(res.helper_pidfd)
            if pid is None:
                await trio.lowlevel.wait_readable(res.err_r)
                raise _ChildFailed(_read_err(res.err_r))
            ends = []
            return Launched(ContainerProcess(pid, os.pidfd_open(pid)), res.sync_w, res.err_r, res.sock_r)
        except BaseException as exc:
            if not isinstance(exc, _ChildFailed):
                with trio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
                    if not pid_read:
                        # Cancelled before we learned the final pid: the helper still tells us.
                        pid = await _read_pid(res.pid_r)
                    await _reap_fd(res.helper_pidfd)
                    if pid is not None:
                        proc = ContainerProcess(pid, os.pidfd_open(pid))
                        proc.kill()
                        await proc.wait()
                        proc.close()
            raise
        finally:
            for fd in [res.pid_r, res.helper_pidfd] + ends:
                _close(fd)


async def _drive(cspec: _native.CSpec, launcher: Launcher, *, use_helper: bool, tty: bool, argv0: str,
                 prepare: Prepare | None, describe: Callable[[str, int], str]) -> ContainerProcess:
    try:
        launched = await launcher.launch(cspec, use_helper, go=prepare is None and not tty)
    except _ChildFailed as exc:
        if exc.report is None:
            raise SpawnError("clone", 0, "exec helper exited without a process", 128) from None
        raise _spawn_error(*exc.report, argv0, describe) from None
    proc = launched.process
    fds = {"sync_w": launched.sync_w, "err_r": launched.err_r, "sock_r": launched.sock_r}
    try:
        if launched.released:  # the launcher let it go and saw its exec
            if launched.report is not None:
                raise _spawn_error(*launched.report, argv0, describe)
            return proc
        if prepare is not None:
            await prepare(proc.pid)
        fds["sync_w"] = -1
        _native.release(launched.sync_w)
        await trio.lowlevel.wait_readable(launched.err_r)
        e = _read_err(launched.err_r)
        if e is not None:
            raise _spawn_error(*e, argv0, describe)
        if tty:
            proc.pty_master = _native.recv_fd(launched.sock_r)
        return proc
    except BaseException:
        with trio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
            proc.kill()
            await proc.wait()
        proc.close()
        if proc.pty_master is not None:
            os.close(proc.pty_master)
        raise
    finally:
        for fd in fds.values():
            _close(fd)


def _stdio_fds(stdio: Stdio, launcher: Launcher) -> tuple[int, int, int]:
    def fd(v):
        return -1 if v is None else launcher.fd(int(v))

    if stdio.tty:
        return (-1, -1, -1)
    return (fd(stdio.stdin), fd(stdio.stdout), fd(stdio.stderr))


def _process_fields(process: ProcessSpec, caps, seccomp: bytes | None) -> dict:
    return dict(
        argv=process.args, envp=process.env, cwd=process.cwd or "/", uid=process.uid,
        gid=process.gid, groups=process.additional_gids, caps=capability_mask(caps),
        no_new_privileges=process.no_new_privileges, rlimits=process.rlimits, seccomp=seccomp,
        exec_signals_blocked=process.exec_signals_blocked,
        oom_score_adj=process.oom_score_adj,
    )


def _oom_what(process: ProcessSpec) -> str:
    return f"{process.oom_score_adj} (write /proc/self/oom_score_adj)"


async def spawn_container(spec: RuntimeSpec, stdio: Stdio, prepare: Prepare | None = None,
                          launcher: Launcher | None = None) -> ContainerProcess:
    """Clone the container's init into new namespaces; it waits until `prepare(pid)` has
    returned (cgroup placement unless `spec.cgroup_tasks` has the child join itself, network),
    then sets up its rootfs and execs. Returns once
    execve succeeded; raises SpawnError (with Docker's exit code and message) otherwise.
    If prepare raises or is cancelled, the child is killed and reaped. `launcher`: where the
    clone happens (default: in this process)."""
    launcher = launcher or Launcher()
    process = spec.process
    if not process.args:
        raise errors.InvalidParameter("no command specified")
    ns = spec.namespaces
    if "mnt" not in ns or ns["mnt"] is not None:
        raise errors.InvalidParameter("a container needs its own mount namespace")
    for name in ns:
        if name not in NAMESPACE_FLAGS:
            raise errors.InvalidParameter(f"unknown namespace {name!r}")

    clone_flags = 0
    for name, path in ns.items():
        if path is None and name != "cgroup":
            clone_flags |= NAMESPACE_FLAGS[name]
    unshare_cgroup = "cgroup" in ns and ns["cgroup"] is None
    use_helper = ns.get("pid") is not None  # joining a pid ns applies to the next child

    mounts = []
    for m in spec.mounts:
        flags, propagation, data = parse_mount_options(m)
        bind = bool(flags & 4096)
        mounts.append((m.source or m.type, m.destination, None if bind else m.type, flags, propagation, data))

    tty = stdio.tty
    caps = grantable_capabilities() if spec.privileged else process.capabilities
    # Only set the hostname in a UTS namespace of our own.
    hostname = spec.hostname if ("uts" in ns and ns["uts"] is None and spec.hostname) else None

    join_fds: list[int] = []

    def build() -> _native.CSpec:
        joins = []
        for name, path in ns.items():
            if path is not None:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                join_fds.append(fd)
                joins.append((launcher.fd(fd), NAMESPACE_FLAGS[name]))
        return _native.build_spec(
            mode=_native.MODE_CONTAINER, use_helper=use_helper, clone_flags=clone_flags,
            unshare_cgroup=unshare_cgroup, joins=joins, rootfs=spec.rootfs,
            readonly_rootfs=spec.readonly_rootfs, hostname=hostname, mounts=mounts,
            devices=spec.devices, symlinks=DEFAULT_SYMLINKS,
            masked=() if spec.privileged else spec.masked_paths,
            readonly=() if spec.privileged else spec.readonly_paths,
            stdio=_stdio_fds(stdio, launcher), tty=tty, tty_size=process.terminal_size,
            cgroup_tasks=spec.cgroup_tasks, sysctls=spec.sysctls,
            **_process_fields(process, caps, None if spec.privileged else process.seccomp_bpf),
        )

    def describe(step: str, index: int) -> str:
        if step in ("mount", "mountpoint", "remount", "propagation", "mount_source") and 0 <= index < len(spec.mounts):
            m = spec.mounts[index]
            src = f' from "{m.source}"' if m.type == "bind" else ""
            return f'"{m.destination}" ({m.type}{src})'
        if step == "mask_paths" and 0 <= index < len(spec.masked_paths):
            return f'"{spec.masked_paths[index]}"'
        if step == "readonly_paths" and 0 <= index < len(spec.readonly_paths):
            return f'"{spec.readonly_paths[index]}"'
        if step == "devices" and 0 <= index < len(spec.devices):
            return f'"{spec.devices[index].path}"'
        if step == "chdir" or step == "cwd":
            return f'"{process.cwd}"'
        if step == "bind_rootfs":
            return f'"{spec.rootfs}"'
        if step == "oom_score_adj":
            return _oom_what(process)
        if step == "sysctl" and 0 <= index < len(spec.sysctls):
            key = spec.sysctls[index][0]
            return f'"{key}" (open {_native.sysctl_path(key)})'
        if step == "cgroup" and 0 <= index < len(spec.cgroup_tasks):
            return f'"{os.path.dirname(spec.cgroup_tasks[index])}"'
        return ""

    try:
        cspec = build()
        return await _drive(cspec, launcher, use_helper=use_helper, tty=tty, argv0=process.args[0],
                            prepare=prepare, describe=describe)
    finally:
        for fd in join_fds:
            os.close(fd)


async def spawn_exec(target_pid: int, process: ProcessSpec, stdio: Stdio, prepare: Prepare | None = None,
                     namespaces=EXEC_NAMESPACES, launcher: Launcher | None = None) -> ContainerProcess:
    """Start `process` inside the running container whose init is `target_pid` (docker exec):
    a helper joins its namespaces (setns through a pidfd), then clones the final process as
    the daemon's child in the container's pid namespace; `prepare(pid)` runs before it execs."""
    launcher = launcher or Launcher()
    if not process.args:
        raise errors.InvalidParameter("no command specified")
    flags = 0
    for name in namespaces:
        flags |= NAMESPACE_FLAGS[name]
    try:
        target = os.pidfd_open(target_pid)
    except ProcessLookupError:
        raise errors.Conflict(f"process {target_pid} is not running") from None
    try:
        cspec = _native.build_spec(
            mode=_native.MODE_EXEC, use_helper=True, clone_flags=0, unshare_cgroup=False,
            joins=[(launcher.fd(target), flags)], rootfs=None, readonly_rootfs=False, hostname=None, mounts=[],
            devices=(), symlinks=(), masked=(), readonly=(), stdio=_stdio_fds(stdio, launcher), tty=stdio.tty,
            tty_size=process.terminal_size,
            **_process_fields(process, process.capabilities, process.seccomp_bpf),
        )

        def describe(step: str, index: int) -> str:
            if step == "setns":
                return f"(pid {target_pid})"
            if step == "oom_score_adj":
                return _oom_what(process)
            if step == "chdir":
                return f'"{process.cwd}"'
            return ""

        return await _drive(cspec, launcher, use_helper=True, tty=stdio.tty, argv0=process.args[0],
                            prepare=prepare, describe=describe)
    finally:
        os.close(target)
