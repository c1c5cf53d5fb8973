"""SpawnerRuntime: containers are cloned by pe-spawner (native/pe_spawner.c), a small
long-lived process per data root, so they outlive the daemon (live restore) and a clone
never copies the daemon's large address space.

The daemon talks to it over <data_root>/spawner.sock (SOCK_SEQPACKET; protocol diagram at the
top of pe_spawner.c). One reader task routes its messages: SPAWNED and FLUSHED answers (by
sequence number), EXIT reports (by pid), DATA (a run's spill file grew, by container and pid) and the
ENTRY list a new daemon asks for. The spawner reads every container's output into its spill
file (engine/runtime/spill.py); the daemon reads the file. The sync protocol
with the child (prepare, release, err pipe, pty) is pe_spawn.c's, driven by spawn.py with
the fds the spawner passes back.

The reader runs in a shielded scope that only `aclose` cancels: container supervisors
waiting for their processes' exit during daemon shutdown need it to the very end.
"""
from __future__ import annotations

import array
import fcntl
import itertools
import logging
import os
import signal
import socket
import struct
import subprocess

import trio

import engine
from engine import errors
from engine.runtime import _native
from engine.runtime.runtime import Adopted
from engine.runtime.spawn import (ContainerProcess, Launched, Launcher, _ChildFailed, spawn_container,
                                  spawn_exec)
from engine.runtime.spill import NO_SPILL

log = logging.getLogger(__name__)

MSG = struct.Struct("=IIiiiiiiI68s")  # struct pe_msg
OP_SPAWN, OP_HOLD, OP_LIST, OP_RELEASE, OP_SHUTDOWN, OP_ARM, OP_FLUSH = 1, 2, 3, 4, 5, 6, 7
OP_SPAWNED, OP_EXIT, OP_ENTRY, OP_END, OP_DATA, OP_FLUSHED = 10, 11, 12, 13, 14, 15
SPAWN_GO = 1  # SPAWN's flags (pe_msg.status): the spawner lets the child go and answers after its exec
SPAWN_HOLD = 2  # … and holds the output ends (the last fds) from the entry's creation: struct pe_hold first
SPAWN_PIPES = 4  # … which it makes itself, as the child's stdout and stderr (pe_hold.nfds 0)
SPAWN_BIGPIPES = 8  # … enlarged to PIPE_SIZE (live restore)
HOLD = struct.Struct("=QII")  # struct pe_hold: spill cap, output ends, directory length (then padded)
_NONE = object()  # no early DATA kept
_GIVEN_UP = object()  # a GO spawn's reply slot once its waiter gave up: the reader kills what comes
FLUSHED = struct.Struct("=QQ")  # FLUSHED's payload: stream offsets of stdout, stderr
KIND_INIT, KIND_EXEC = 0, 1
MAX_FDS = 16
#: Output a container may write while the spawner is busy before it blocks (per pipe).
PIPE_SIZE = 1 << 20
#: Default cap of a run's spill file: beyond it the spawner stops reading (the container
#: blocks on its full pipe, as with no spawner) until a daemon has logged some of it.
SPILL_MAX = 64 << 20
LOST = 255  # exit code reported when the spawner went away with the process


def binary_path() -> str:
    return os.path.join(os.path.dirname(engine.__file__), "pe-spawner")


def same_build(pid: int) -> bool:
    """Whether the spawner running as `pid` is this installation's binary. An upgrade installs
    a new file (a running executable cannot be written in place), so another inode means
    another build, which may speak another protocol."""
    try:
        running, ours = os.stat(f"/proc/{pid}/exe"), os.stat(binary_path())
    except OSError:
        return False
    return (running.st_dev, running.st_ino) == (ours.st_dev, ours.st_ino)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


async def retire_other_build(pid: int) -> None:
    """A spawner from another pyengine build holds this data root. With no container left it
    is stopped so that ours can start; with running containers it is left alone and the
    daemon refuses to start, rather than drive it with a protocol it may not speak."""
    running = _children(pid)
    if running:
        raise errors.SystemError_(
            f"a pe-spawner from another pyengine build (pid {pid}) still runs {len(running)} "
            "container process(es) of this data root: stop them with the pyengine that started "
            f"them, or kill {pid} (which ends them), then start this daemon again")
    log.warning("stopping pe-spawner %d: it is from another pyengine build and runs no container", pid)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, 9)
        with trio.move_on_after(10):
            await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)


def available() -> bool:
    return os.access(binary_path(), os.X_OK)


def enlarge_pipe(fd: int) -> None:
    """Room for output written while the daemon is away (no memory is used until it is)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


class SpawnedProcess(ContainerProcess):
    """A child of the spawner: signalled through its pidfd, its exit reported by the spawner."""

    def __init__(self, runtime: "SpawnerRuntime", pid: int, pidfd: int, pty_master: int | None = None):
        super().__init__(pid, pidfd, pty_master)
        self._runtime = runtime

    async def wait(self) -> int:
        if self.returncode is None:
            self.returncode = await self._runtime.wait_exit(self.pid)
        return self.returncode

    def close(self) -> None:
        super().close()
        self._runtime.forget_exit(self.pid)


class _SpawnerLauncher(Launcher):
    def __init__(self, runtime: "SpawnerRuntime", container_id: str, kind: int, held=None) -> None:
        self.runtime, self.container_id, self.kind, self.held = runtime, container_id, kind, held
        self.fds: list[int] = []

    def fd(self, fd: int) -> int:
        self.fds.append(fd)
        return len(self.fds) - 1

    async def launch(self, cspec, use_helper: bool, go: bool = False) -> Launched:
        payload, fds, flags = _native.pack_spec(cspec), self.fds, 0
        if self.held is not None:  # after the spec's fds, which its indexes name
            directory = os.fsencode(self.held.directory)
            pad = b"\0" * (-len(directory) % 8)
            payload = HOLD.pack(self.runtime.spill_max, len(self.held.fds), len(directory)) + directory + pad + payload
            fds, flags = fds + list(self.held.fds), SPAWN_HOLD
            if not self.held.fds:
                flags |= SPAWN_PIPES | (SPAWN_BIGPIPES if self.runtime.live_restore else 0)
        return await self.runtime._spawn(self.container_id, self.kind, payload, fds, go, flags)


def _kill_given_up(slot, pid: int, fds: list[int]) -> None:
    """A SPAWNED nobody waits for any more: a GO start's child (`slot` is _GIVEN_UP) runs
    already and is killed through its pidfd (the spawner reaps it); an older-style one exits
    when its sync pipe closes. Every fd is closed."""
    if slot is _GIVEN_UP and pid > 0 and fds:
        try:
            signal.pidfd_send_signal(fds[0], signal.SIGKILL)
        except ProcessLookupError:
            pass
    for fd in fds:
        os.close(fd)


def _new_socket() -> tuple[trio.socket.SocketType, socket.socket]:
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    return trio.socket.from_stdlib_socket(raw), raw


def _fds_from(ancdata) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(data[: len(data) - len(data) % a.itemsize])
            fds.extend(a)
    return fds


class SpawnerRuntime:
    """engine.runtime.Runtime through pe-spawner. Build, then `await nursery.start(rt.run)`."""

    spills = True

    def __init__(self, data_root: str, live_restore: bool = True, spill_max: int = SPILL_MAX) -> None:
        self.live_restore = live_restore
        self.spill_max = spill_max
        self._data: dict[tuple[str, int], list] = {}  # (id, pid) → [Event, generation | None]
        # A held spawn's run is armed from its creation, so its first DATA may come before the
        # SPAWNED (or the pump's first wait): kept until that wait or the run's release, for
        # the containers with such a run (one run at a time each) not released yet.
        self._early: dict[tuple[str, int], int | None] = {}
        self._armed_ids: set[str] = set()
        self.socket_path = os.path.join(data_root, "spawner.sock")
        self.log_path = os.path.join(data_root, "spawner.log")
        self._sock: trio.socket.SocketType | None = None
        self._raw: socket.socket | None = None  # the same socket, for sends that need no wait
        self._send_lock = trio.Lock()
        self._seq = itertools.count(1)
        self._replies: dict[int, list] = {}  # seq → [Event, (msg, fds) | None]
        self._exits: dict[int, int] = {}  # pid → exit code, once reported
        self._exit_events: dict[int, trio.Event] = {}
        self._listing: list | None = None
        self._listed = trio.Event()
        self._scope: trio.CancelScope | None = None
        self._broken = False
        self._closed = trio.Event()

    # --- service ------------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self._sock, self._raw = await self._connect()
        with trio.CancelScope(shield=True) as self._scope:
            task_status.started()
            try:
                await self._read_loop()
            finally:
                self._broken = True
                for pid, event in list(self._exit_events.items()):
                    self._exits.setdefault(pid, LOST)
                    event.set()
                for slot in self._replies.values():
                    if slot is not _GIVEN_UP:
                        slot[0].set()
                for slot in self._data.values():
                    slot[0].set()
                self._listed.set()
                self._sock.close()
                self._closed.set()

    async def _connect(self) -> tuple[trio.socket.SocketType, socket.socket]:
        sock, raw = _new_socket()
        try:
            await sock.connect(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        else:
            peer = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            if same_build(peer):
                return sock, raw
            sock.close()
            await retire_other_build(peer)
            sock, raw = _new_socket()
        with open(self.log_path, "ab") as logf:
            # It forks; the process we run exits once the spawner listens.
            result = await trio.run_process([binary_path(), self.socket_path], stdin=subprocess.DEVNULL,
                                            stdout=logf, stderr=logf, check=False)
        if result.returncode != 0:
            sock.close()
            raise errors.SystemError_(f"pe-spawner did not start (see {self.log_path})")
        await sock.connect(self.socket_path)
        return sock, raw

    async def _read_loop(self) -> None:
        anc = socket.CMSG_SPACE(4 * (MAX_FDS + 1))
        raw, read = self._raw, 0
        while True:
            # Read until the socket is empty, then wait (a yield per message cost more than the
            # message's handling); a checkpoint now and then all the same, between messages.
            if read >= 16:
                read = 0
                await trio.lowlevel.checkpoint()
            try:
                data, ancdata, _flags, _addr = raw.recvmsg(MSG.size + FLUSHED.size, anc)
            except BlockingIOError:
                read = 0
                await trio.lowlevel.wait_readable(raw)
                continue
            read += 1
            fds = _fds_from(ancdata)
            if not data:
                log.error("pe-spawner closed its connection")
                for fd in fds:
                    os.close(fd)
                return
            op, seq, pid, kind, status, step, err, index, _n, raw_id = MSG.unpack_from(data)
            cid = raw_id.split(b"\0", 1)[0].decode()
            if op == OP_SPAWNED:
                slot = self._replies.pop(seq, None)
                if slot is None or slot is _GIVEN_UP:
                    # The spawn was cancelled: the child exits on sync EOF, or (GO: let go
                    # already) is killed here, unless a RELEASE got to the spawner first.
                    _kill_given_up(slot, pid, fds)
                    continue
                slot[1] = ((pid, step, err, index), fds)
                slot[0].set()
            elif op == OP_FLUSHED:
                slot = self._replies.pop(seq, None)
                if slot is not None:
                    ok = status >= 0 and len(data) >= MSG.size + FLUSHED.size
                    slot[1] = dict(zip((1, 2), FLUSHED.unpack_from(data, MSG.size))) if ok else None
                    slot[0].set()
            elif op == OP_EXIT:
                self._exits[pid] = status
                event = self._exit_events.pop(pid, None)
                if event is not None:
                    event.set()
            elif op == OP_ENTRY:
                if self._listing is not None:
                    self._listing.append((cid, pid, kind, status, fds))
                else:
                    for fd in fds:
                        os.close(fd)
            elif op == OP_DATA:
                # status -1: nothing more, ever (the answer to an ARM of a run that is gone,
                # or the end of a run that never wrote a byte: see wait_output)
                slot = self._data.pop((cid, pid), None)
                if slot is not None:
                    slot[1] = seq if status >= 0 else NO_SPILL
                    slot[0].set()
                elif cid in self._armed_ids:
                    self._early[(cid, pid)] = seq if status >= 0 else NO_SPILL
            elif op == OP_END:
                self._listed.set()
            else:
                for fd in fds:
                    os.close(fd)

    async def _send(self, op: int, container_id: str = "", *, seq: int = 0, pid: int = 0, kind: int = 0,
                    payload: bytes = b"", fds: list[int] = (), flags: int = 0) -> None:
        if self._broken or self._sock is None:
            raise errors.SystemError_("the container spawner is not running")
        header = MSG.pack(op, seq, pid, kind, flags, 0, 0, 0, len(fds), container_id.encode())
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        parts = [header, payload] if payload else [header]
        if not self._send_lock.locked():
            # A message is sent whole or not at all (SOCK_SEQPACKET): without a wait for
            # room, no lock and no checkpoint (two yields per message, two messages per start).
            try:
                self._raw.sendmsg(parts, anc)
                return
            except BlockingIOError:
                pass
        async with self._send_lock:
            await self._sock.sendmsg(parts, anc)

    async def wait_exit(self, pid: int) -> int:
        while pid not in self._exits:
            if self._broken:
                return LOST
            event = self._exit_events.setdefault(pid, trio.Event())
            await event.wait()
        return self._exits[pid]

    def forget_exit(self, pid: int) -> None:
        self._exits.pop(pid, None)

    # --- Runtime ------------------------------------------------------------------------------
    async def _spawn(self, container_id: str, kind: int, payload: bytes, fds: list[int], go: bool = False,
                     flags: int = 0) -> Launched:
        """SPAWN, and its SPAWNED. `go`: nothing to prepare, the spawner lets the child go and
        answers once it exec'd (or failed to): one round trip, no sync/err pipe for us."""
        seq = next(self._seq)
        slot = [trio.Event(), None]
        self._replies[seq] = slot
        sent = False
        try:
            await self._send(OP_SPAWN, container_id, seq=seq, kind=kind, payload=payload, fds=fds,
                             flags=flags | (SPAWN_GO if go else 0))
            sent = True
            await slot[0].wait()
        except BaseException:
            if self._replies.get(seq) is slot:
                del self._replies[seq]
                if go and sent:
                    self._replies[seq] = _GIVEN_UP  # its answer is still to come
            if slot[1] is not None:  # answered, yet we give up: the child must not run on
                (pid, *_), rfds = slot[1]
                _kill_given_up(_GIVEN_UP if go else None, pid, rfds)
            raise
        finally:
            if self._replies.get(seq) is slot:
                del self._replies[seq]
        if slot[1] is None:
            raise errors.SystemError_("the container spawner went away")
        (pid, step, err, index), rfds = slot[1]
        if pid < 0:
            raise _ChildFailed((step, err, index) if step else None)
        if go:
            return Launched(SpawnedProcess(self, pid, rfds[0]), -1, -1, released=True,
                            report=(step, err, index) if step else None)
        pidfd, sync_w, err_r = rfds[0], rfds[1], rfds[2]
        sock_r = rfds[3] if len(rfds) > 3 else -1
        return Launched(SpawnedProcess(self, pid, pidfd), sync_w, err_r, sock_r)

    async def spawn_container(self, container_id, spec, stdio, prepare=None, held=None) -> ContainerProcess:
        launcher = _SpawnerLauncher(self, container_id, KIND_INIT, held)
        if held is not None:
            self._armed_ids.add(container_id)
        try:
            return await spawn_container(spec, stdio, prepare=prepare, launcher=launcher)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.release(container_id)
            raise

    async def spawn_exec(self, container_id, target_pid, process, stdio, prepare=None) -> ContainerProcess:
        return await spawn_exec(target_pid, process, stdio, prepare=prepare,
                                launcher=_SpawnerLauncher(self, container_id, KIND_EXEC))

    async def hold(self, container_id, fds, pid: int = 0, spill: str | None = None) -> None:
        payload = struct.pack("=Q", self.spill_max) + os.fsencode(spill) + b"\0" if spill else b""
        await self._send(OP_HOLD, container_id, pid=pid, payload=payload, fds=list(fds))

    async def wait_output(self, container_id: str, pid: int, read_to: int, keep_from: int,
                          armed: bool = False) -> int | None:
        """Tell the spawner how far the run's spill was read (and which head it may drop),
        and wait until there is more: returns the file's generation (a new one: read it
        again from the start), None when the run is gone (or the spawner). `armed`: the
        first wait of a held spawn's run, which the spawner armed itself (no ARM); its
        "nothing more" can then only come from the run's end without a byte spilled (the
        spawner answers so to an ARM of a run it does not know too): NO_SPILL, no file."""
        key = (container_id, pid)
        early = self._early.pop(key, _NONE)
        if armed and early is not _NONE:
            return early
        slot = [trio.Event(), None]
        self._data[key] = slot
        try:
            if not armed:
                await self._send(OP_ARM, container_id, pid=pid, payload=struct.pack("=QQ", read_to, keep_from))
            elif self._broken:
                return None
            await slot[0].wait()
        except (errors.EngineError, OSError):
            return None
        finally:
            if self._data.get((container_id, pid)) is slot:
                del self._data[(container_id, pid)]
        if slot[1] == NO_SPILL and not armed:
            return None
        return slot[1]

    async def flush_output(self, container_id: str, pid: int) -> dict[int, int] | None:
        """Have the spawner read what the run's output fds hold now into its spill; returns
        the stream offsets ({1: stdout, 2: stderr}) the spill then holds, or None."""
        seq = next(self._seq)
        slot = [trio.Event(), None]
        self._replies[seq] = slot
        try:
            await self._send(OP_FLUSH, container_id, seq=seq, pid=pid)
            await slot[0].wait()
        except (errors.EngineError, OSError):
            return None
        finally:
            self._replies.pop(seq, None)
        return slot[1]

    async def release(self, container_id, pid: int = 0) -> None:
        if container_id in self._armed_ids:  # its run is over (or never started)
            self._armed_ids.discard(container_id)
            for key in [k for k in self._early if k[0] == container_id]:
                del self._early[key]
        try:
            await self._send(OP_RELEASE, container_id, pid=pid)
        except (errors.EngineError, OSError):
            pass

    async def adopt(self) -> dict[str, Adopted]:
        """Every init the spawner knows: running ones with a pidfd and their held fds, exited
        ones with their status. Exec entries are let go (their clients are gone)."""
        self._listing, self._listed = [], trio.Event()
        await self._send(OP_LIST)
        await self._listed.wait()
        entries, self._listing = self._listing or [], None
        out: dict[str, Adopted] = {}
        for cid, pid, kind, status, fds in entries:
            if kind != KIND_INIT:
                for fd in fds:
                    os.close(fd)
                await self.release(cid, pid)
                continue
            if status < 0 and fds and fds[0] >= 0:
                adopted = Adopted(cid, pid, process=SpawnedProcess(self, pid, fds[0]), fds=fds[1:])
            else:
                # exited meanwhile: the held fds still hold its last output
                adopted = Adopted(cid, pid, exit_code=status if status >= 0 else LOST, fds=fds)
            previous = out.get(cid)
            if previous is not None and previous.process is not None:
                # an older run of the same container cannot still be running: keep the live one
                adopted, previous = previous, adopted
            if previous is not None:
                for fd in previous.fds:
                    os.close(fd)
                await self.release(cid, previous.pid)
            out[cid] = adopted
        return out

    async def aclose(self, stop: bool) -> None:
        if stop and not self._broken:
            try:
                await self._send(OP_SHUTDOWN)
                with trio.move_on_after(5):
                    await self._closed.wait()
            except (errors.EngineError, OSError):
                pass
        if self._scope is not None:
            self._scope.cancel()
