"""The manager interface shared by v1 and v2, plus the parts that do not differ."""

import abc
import errno
import os
import signal as _signal
import time

from engine.errors import InvalidParameter, SystemError_

from . import _fs
from ._resources import Resources
from ._stats import CgroupStats

FREEZE_TIMEOUT = 5.0
DESTROY_BUDGET = 1.0  # seconds destroy may spend waiting for tasks to leave


def check_name(what: str, value: str, allow_slash: bool = False) -> None:
    parts = value.strip("/").split("/") if allow_slash else [value]
    if not value or any(p in ("", ".", "..") or (not allow_slash and "/" in p) for p in parts):
        raise InvalidParameter(f"cgroups: invalid {what} {value!r}")


def system_cpu_usage() -> int:
    """Host CPU time in ns as Docker computes it: user..softirq of /proc/stat's cpu line."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(x) for x in line.split()[1:8])
                return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def online_cpus() -> int:
    return os.sysconf("SC_NPROCESSORS_ONLN")


def host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


class CgroupManager(abc.ABC):
    """One container's cgroup(s). Every method is plain sync file IO: the daemon calls
    them inside trio.to_thread.run_sync. `create_ops` and `destroy_ops` are the exception:
    they only say what to do (engine.runtime.hostops), for the hot path of start and exit."""

    mode: str
    container_id: str
    parent: str

    def create_ops(self, resources: Resources) -> list | None:
        """What `create(resources)` does, as host operations, when that is a fixed list
        (no file to read first, nothing to warn about); None when only `create` will do."""
        return None

    def destroy_ops(self) -> list | None:
        """What `destroy` does for cgroups their tasks have left (an rmdir each), as host
        operations; None when only `destroy` will do. A directory still busy fails them:
        `destroy` then kills and waits."""
        return None

    # ---- per-version pieces ----

    @abc.abstractmethod
    def dirs(self) -> list[str]:
        """The container's directories (one per v1 hierarchy; one for v2)."""

    @abc.abstractmethod
    def create(self, resources: Resources) -> list[str]:
        """Make the cgroup(s) and apply limits; all-or-nothing. Returns warnings."""

    @abc.abstractmethod
    def update(self, resources: Resources) -> list[str]:
        """Apply the limits that are set in `resources` (docker update). Returns warnings."""

    @abc.abstractmethod
    def add_process(self, pid: int) -> None: ...

    def self_join_files(self) -> list[str]:
        """Files a new single-threaded process writes "0" to in order to join these cgroups
        itself (cgroup v1 `tasks`: a thread moving itself skips the kernel's global
        threadgroup lock and its RCU grace period, milliseconds per placement). Empty: the
        parent places it with add_process."""
        return []

    @abc.abstractmethod
    def pids(self) -> list[int]: ...

    @abc.abstractmethod
    def is_frozen(self) -> bool: ...

    @abc.abstractmethod
    def _request_freeze(self, frozen: bool) -> None: ...

    @abc.abstractmethod
    def _freeze_state(self) -> str:
        """'FROZEN', 'THAWED' or 'FREEZING'."""

    @abc.abstractmethod
    def oom_kill_count(self) -> int: ...

    @abc.abstractmethod
    def stats(self) -> CgroupStats:
        """The counters `docker stats` shows."""

    @abc.abstractmethod
    def container_mounts(self, own_namespace: bool = True) -> list:
        """/sys/fs/cgroup in the container (read-only). In its own cgroup namespace a cgroup
        mount shows the container's cgroup as the root; in the host's (CgroupnsMode "host")
        that would be the whole host tree, so the container's directories are bind-mounted
        instead, as runc does."""

    # ---- shared ----

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.dirs())

    def freeze(self, timeout: float = FREEZE_TIMEOUT) -> None:
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = FREEZE_TIMEOUT) -> None:
        self._set_frozen(False, timeout)

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        want = "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + timeout
        delay = 0.0005
        self._request_freeze(frozen)
        while True:
            state = self._freeze_state()
            if state == want:
                return
            if time.monotonic() >= deadline:
                if frozen:  # don't leave it half frozen
                    try:
                        self._request_freeze(False)
                    except Exception:
                        pass
                raise SystemError_(
                    f"cgroups: {self.container_id}: timed out waiting for {want} (state {state})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
            # v1 can get stuck in FREEZING when a task was forking; asking again helps (runc)
            self._request_freeze(frozen)

    def _all_pids(self) -> set[int]:
        pids: set[int] = set()
        for d in self.dirs():
            for root, _subdirs, _files in os.walk(d):
                pids.update(_fs.read_pids(os.path.join(root, "cgroup.procs")))
        return pids

    def kill_all(self, sig: int = _signal.SIGKILL) -> list[int]:
        """Signal every process left in the cgroup (sub-cgroups included). The cgroup is
        frozen around the signalling so nothing forks past us; a paused container stays
        paused unless the signal is SIGKILL. Returns the pids signalled."""
        frozen_before = False
        froze = False
        try:
            frozen_before = self.is_frozen()
            if not frozen_before:
                self.freeze(timeout=0.5)
                froze = True
        except Exception:
            pass
        pids = sorted(self._all_pids())
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if froze or (frozen_before and sig == _signal.SIGKILL):
            try:
                self.thaw(timeout=0.5)
            except Exception:
                pass
        return pids

    def destroy(self) -> None:
        """Kill what is left and remove the directories. Idempotent; waits at most ~1 s
        for dying tasks to leave, then reports the directory that stayed busy."""
        # An exited container's cgroups are empty: one rmdir each, nothing to scan.
        busy_first = False
        for d in self.dirs():
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise _fs.cgroup_error(SystemError_, d, f"rmdir: {e.strerror}") from e
                busy_first = True
        if not busy_first:
            return
        try:
            if self.is_frozen():
                self._request_freeze(False)
        except Exception:
            pass
        deadline = time.monotonic() + DESTROY_BUDGET
        delay = 0.001
        while True:
            for pid in self._all_pids():
                try:
                    os.kill(pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
            busy: tuple[str, OSError] | None = None
            for d in self.dirs():
                try:
                    _fs.rmdir_tree(d)
                except OSError as e:
                    if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        raise _fs.cgroup_error(SystemError_, d, f"rmdir: {e.strerror}") from e
                    busy = (d, e)
            if busy is None:
                return
            if time.monotonic() >= deadline:
                raise _fs.cgroup_error(SystemError_, busy[0], f"rmdir: {busy[1].strerror}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def mkdir_chain(base: str, rel: str, made: list[str], on_level=None) -> str:
    """mkdir base/rel one component at a time, recording what was created; on_level(path)
    runs for every level (cpuset needs its parent's cpus/mems copied). When the parent
    exists already (every container but a daemon's first), one mkdir of the leaf."""
    leaf = os.path.join(base, rel.strip("/"))
    if "/" in rel.strip("/"):
        try:
            os.mkdir(leaf, 0o755)
        except (FileNotFoundError, FileExistsError):
            pass  # no parent yet (or the leaf is there): walk the chain
        except OSError as e:
            raise _fs.cgroup_error(SystemError_, leaf, f"mkdir: {e.strerror}") from e
        else:
            made.append(leaf)
            if on_level is not None:
                on_level(leaf)
            return leaf
    cur = base
    for part in rel.strip("/").split("/"):
        cur = os.path.join(cur, part)
        try:
            os.mkdir(cur, 0o755)
            made.append(cur)
        except FileExistsError:
            pass
        except OSError as e:
            raise _fs.cgroup_error(SystemError_, cur, f"mkdir: {e.strerror}") from e
        if on_level is not None:
            on_level(cur)
    return cur


def rollback(made: list[str], keep: set[str]) -> list[str]:
    """rmdir what create made (deepest first), except shared parents in `keep`."""
    errors = []
    for d in reversed(made):
        if d in keep:
            continue
        try:
            _fs.rmdir_tree(d)
        except OSError as e:
            errors.append(f"{d}: {e.strerror}")
    return errors
