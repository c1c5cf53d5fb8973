"""cgroup v1: one directory per mounted hierarchy (cpu and cpuacct may be separate)."""

import os

import attrs

from engine.errors import InvalidParameter, SystemError_

from . import _fs
from ._detect import Layout
from ._manager import CgroupManager, host_memory, mkdir_chain, online_cpus, system_cpu_usage
from ._devices import ALLOW_ALL, DEFAULT_DEVICE_RULES
from ._resources import BLKIO_WEIGHT_UNSUPPORTED_WARNING, SWAP_UNSUPPORTED_WARNING, Resources
from ._stats import BlkioEntry, BlkioStats, CgroupStats, CpuStats, MemoryStats, PidsStats

USER_HZ_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


# ---- one small function per controller: (directory, resources) → warnings ----


def set_memory(path: str, res: Resources) -> list[str]:
    warnings: list[str] = []
    if res.memory_reservation:
        _fs.write(os.path.join(path, "memory.soft_limit_in_bytes"), res.memory_reservation)
    if res.swappiness() is not None:
        _fs.write(os.path.join(path, "memory.swappiness"), res.swappiness())
    if res.oom_kill_disable:
        _fs.write(os.path.join(path, "memory.oom_control"), 1)
    memsw = res.memsw_limit()
    if not res.memory and memsw is None:
        return warnings
    limit_file = os.path.join(path, "memory.limit_in_bytes")
    memsw_file = os.path.join(path, "memory.memsw.limit_in_bytes")
    if memsw is not None and not os.path.exists(memsw_file):
        if res.memory and res.memory_swap != -1:
            warnings.append(SWAP_UNSUPPORTED_WARNING)
        memsw = None
    if memsw is None:
        if res.memory:
            _fs.write(limit_file, res.memory)
        return warnings
    # memsw must stay ≥ memory at every step: grow memsw first, shrink memory first.
    if not res.memory:
        _fs.write(memsw_file, memsw)
    elif memsw == -1 or _fs.read_int(limit_file) < res.memory:
        _fs.write(memsw_file, memsw)
        _fs.write(limit_file, res.memory)
    else:
        _fs.write(limit_file, res.memory)
        _fs.write(memsw_file, memsw)
    return warnings


def set_cpu(path: str, res: Resources) -> list[str]:
    if res.cpu_shares:
        _fs.write(os.path.join(path, "cpu.shares"), res.cpu_shares)
    cfs = res.cfs()
    if cfs is not None:
        quota, period = cfs
        _fs.write(os.path.join(path, "cpu.cfs_period_us"), period)
        _fs.write(os.path.join(path, "cpu.cfs_quota_us"), quota)
    set_cpu_rt(path, res)
    return []


def set_cpu_rt(path: str, res: Resources) -> None:
    """cpu.rt_period_us and cpu.rt_runtime_us, in runc's order: the two depend on each other
    (and on the parent's real-time budget), so a period refused while the runtime is to be
    set too is written again after it."""
    period_file, runtime_file = os.path.join(path, "cpu.rt_period_us"), os.path.join(path, "cpu.rt_runtime_us")
    period_pending = False
    if res.cpu_realtime_period:
        try:
            _fs.write(period_file, res.cpu_realtime_period)
        except InvalidParameter:
            if not res.cpu_realtime_runtime:
                raise
            period_pending = True
    if res.cpu_realtime_runtime:
        _fs.write(runtime_file, res.cpu_realtime_runtime)
        if period_pending:
            _fs.write(period_file, res.cpu_realtime_period)


def set_cpuset(path: str, res: Resources) -> list[str]:
    if res.cpuset_cpus:
        _fs.write(os.path.join(path, "cpuset.cpus"), res.cpuset_cpus)
    if res.cpuset_mems:
        _fs.write(os.path.join(path, "cpuset.mems"), res.cpuset_mems)
    return []


def set_pids(path: str, res: Resources) -> list[str]:
    limit = res.pids_max()
    if limit is not None:
        _fs.write(os.path.join(path, "pids.max"), "max" if limit < 0 else limit)
    return []


def set_blkio(path: str, res: Resources) -> list[str]:
    for kind, entries in res.throttles():
        for major, minor, rate in entries:
            _fs.write(os.path.join(path, f"blkio.throttle.{kind}_device"), f"{major}:{minor} {rate}")
    for major, minor, weight in res.blkio_weight_device:  # discarded at create where missing
        for name in ("blkio.weight_device", "blkio.bfq.weight_device"):
            if os.path.exists(os.path.join(path, name)):
                _fs.write(os.path.join(path, name), f"{major}:{minor} {weight}")
                break
    if not res.blkio_weight:
        return []
    for name in ("blkio.weight", "blkio.bfq.weight"):  # CFQ's, then BFQ's on newer kernels
        if os.path.exists(os.path.join(path, name)):
            _fs.write(os.path.join(path, name), res.blkio_weight)
            return []
    return [BLKIO_WEIGHT_UNSUPPORTED_WARNING]


_DEFAULT_V1_LINES = tuple(rule.v1_line() for rule in DEFAULT_DEVICE_RULES)
_ALLOW_ALL_V1_LINES = tuple(rule.v1_line() for rule in ALLOW_ALL)


def _device_lines(res: Resources) -> tuple[str, ...]:
    return _ALLOW_ALL_V1_LINES if res.allow_all_devices else \
        _DEFAULT_V1_LINES + tuple(rule.v1_line() for rule in res.device_rules)


def set_devices(path: str, res: Resources) -> list[str]:
    _fs.write(os.path.join(path, "devices.deny"), "a")
    _fs.write_each(os.path.join(path, "devices.allow"), _device_lines(res))  # one rule per write
    return []


#: (layout, parent) under which V1Manager.create_ops may make a container's cgroups: a
#: `create` found the parents there, and the cpuset parent copying cpus/mems to children.
_PLAIN_PARENTS: set = set()
_NO_LIMITS = Resources()


def forget_parent(manager) -> None:
    """The parent is going away: the next create under it is a full one."""
    _PLAIN_PARENTS.discard((manager.layout, manager.parent))


def inherit_cpuset(path: str) -> None:
    """A new cpuset cgroup starts with empty cpus/mems and refuses tasks until they are
    set: copy them from the parent (the classic v1 gotcha). A parent with clone_children
    set (the ones we create, see V1Manager.create) has the kernel copy them at mkdir."""
    parent = os.path.dirname(path)
    for name in ("cpuset.cpus", "cpuset.mems"):
        mine = os.path.join(path, name)
        if not _fs.read(mine).strip():
            value = _fs.read(os.path.join(parent, name)).strip()
            if not value and os.path.exists(os.path.join(os.path.dirname(parent), name)):
                inherit_cpuset(parent)  # a parent someone else made and left empty
                value = _fs.read(os.path.join(parent, name)).strip()
            _fs.write(mine, value)


# ---- stats readers ----


def _blkio_entries(text: str | None) -> tuple[BlkioEntry, ...] | None:
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = parts[0].split(":", 1)
        out.append(BlkioEntry(int(major), int(minor), parts[1], int(parts[2])))
    return tuple(out) or None


def _blkio_file(path: str, name: str) -> tuple[BlkioEntry, ...] | None:
    # CFQ's blkio.<name> is gone on modern kernels; Docker falls back to the throttle files.
    text = _fs.read_optional(os.path.join(path, name))
    entries = _blkio_entries(text)
    if entries is None:
        entries = _blkio_entries(_fs.read_optional(os.path.join(path, "blkio.throttle." + name[len("blkio."):])))
    return entries


class V1Manager(CgroupManager):
    mode = "v1"

    def __init__(self, layout: Layout, parent: str, container_id: str):
        self.layout = layout
        self.parent = parent
        self.container_id = container_id
        self._paths: dict[str, str] = {}
        self._bases: dict[str, str] = {}
        for h in layout.hierarchies:
            base = h.mountpoint if parent.startswith("/") else h.own
            self._bases[h.name] = base
            self._paths[h.name] = os.path.join(base, parent.strip("/"), container_id)

    # paths

    def dirs(self) -> list[str]:
        return list(self._paths.values())

    def path(self, controller: str) -> str | None:
        """The container's directory in the hierarchy holding `controller`."""
        h = self.layout.by_controller(controller)
        return self._paths[h.name] if h else None

    def parent_dirs(self) -> list[str]:
        return [os.path.join(b, self.parent.strip("/")) for b in self._bases.values()]

    # lifecycle

    def create_ops(self, resources: Resources) -> list | None:
        """A directory per hierarchy and the devices rules, once a `create` under the same
        parent found the parents there and cpuset's copying cpus/mems into new children
        (clone_children); only for no limits but devices (the rest reads or warns)."""
        unlimited_pids = resources.pids_max() in (None, -1)  # a new cgroup's pids.max is "max"
        if (self.layout, self.parent) not in _PLAIN_PARENTS or not unlimited_pids or \
                attrs.evolve(resources, device_rules=(), allow_all_devices=False, pids_limit=None) != _NO_LIMITS:
            return None
        from engine.runtime.hostops import Mkdir, Write

        ops: list = [Mkdir(d) for d in self.dirs()]
        if (p := self.path("devices")) is not None:
            ops += [Write(os.path.join(p, "devices.deny"), ("a",)),
                    Write(os.path.join(p, "devices.allow"), _device_lines(resources))]
        return ops

    def destroy_ops(self) -> list:
        from engine.runtime.hostops import Rmdir

        return [Rmdir(d) for d in self.dirs()]

    def create(self, resources: Resources) -> list[str]:
        warnings = self._create(resources)
        cpuset = self.path("cpuset")
        if cpuset is None or _fs.read(os.path.join(os.path.dirname(cpuset), "cgroup.clone_children")).strip() == "1":
            _PLAIN_PARENTS.add((self.layout, self.parent))
        else:
            _PLAIN_PARENTS.discard((self.layout, self.parent))
        return warnings

    def _create(self, resources: Resources) -> list[str]:
        resources.validate()
        made: list[str] = []
        try:
            rel = os.path.join(self.parent.strip("/"), self.container_id)
            for h in self.layout.hierarchies:
                hook = None
                if "cpuset" in h.controllers:
                    leaf = self._paths[h.name]

                    def hook(level: str, leaf=leaf) -> None:
                        inherit_cpuset(level)
                        if level != leaf and level in made:
                            # A parent of our own: its next children get cpus/mems at mkdir.
                            _fs.write(os.path.join(level, "cgroup.clone_children"), 1)
                mkdir_chain(self._bases[h.name], rel, made, hook)
            warnings = self._apply(resources, creating=True)
        except BaseException as e:
            # Remove the container dirs we made; shared parents stay (another create may
            # be about to use them).
            leaves = set(self.dirs())
            errors = []
            for d in reversed([m for m in made if m in leaves]):
                try:
                    _fs.rmdir_tree(d)
                except OSError as re:
                    errors.append(f"{d}: {re.strerror}")
            if errors and hasattr(e, "message"):
                e.message += "; rollback failed: " + ", ".join(errors)  # type: ignore[attr-defined]
                e.args = (e.message,)  # type: ignore[attr-defined]
            raise
        return warnings

    def update(self, resources: Resources) -> list[str]:
        resources.validate()
        return self._apply(resources, creating=False)

    def _apply(self, res: Resources, creating: bool) -> list[str]:
        warnings: list[str] = []
        steps = [("memory", set_memory), ("cpu", set_cpu), ("cpuset", set_cpuset), ("pids", set_pids),
                 ("blkio", set_blkio)]
        for controller, fn in steps:
            p = self.path(controller)
            if p is None:
                if controller == "blkio" and res.blkio_weight:
                    warnings.append(BLKIO_WEIGHT_UNSUPPORTED_WARNING)
                continue
            if creating and controller == "pids" and res.pids_max() == -1:
                continue  # "max": what a new cgroup's pids.max holds already
            warnings += fn(p, res)
        if creating and (p := self.path("devices")) is not None:
            warnings += set_devices(p, res)
        return warnings

    def add_process(self, pid: int) -> None:
        for d in self.dirs():
            _fs.write(os.path.join(d, "cgroup.procs"), pid)

    def self_join_files(self) -> list[str]:
        return [os.path.join(d, "tasks") for d in self.dirs()]

    def pids(self) -> list[int]:
        for controller in ("pids", "freezer", "memory", "devices"):
            p = self.path(controller)
            if p is not None:
                return _fs.read_pids(os.path.join(p, "cgroup.procs"))
        return sorted(self._all_pids())

    # freezer

    def _freezer_file(self) -> str:
        p = self.path("freezer")
        if p is None:
            raise SystemError_("cgroups: the freezer controller is not mounted")
        return os.path.join(p, "freezer.state")

    def _request_freeze(self, frozen: bool) -> None:
        _fs.write(self._freezer_file(), "FROZEN" if frozen else "THAWED")

    def _freeze_state(self) -> str:
        return _fs.read(self._freezer_file()).strip()

    def is_frozen(self) -> bool:
        p = self.path("freezer")
        if p is None:
            return False
        return (_fs.read_optional(os.path.join(p, "freezer.state")) or "").strip() == "FROZEN"

    # accounting

    def oom_kill_count(self) -> int:
        p = self.path("memory")
        if p is None:
            return 0
        return _fs.flat_keyed(_fs.read_optional(os.path.join(p, "memory.oom_control"))).get("oom_kill", 0)

    def stats(self) -> CgroupStats:
        return CgroupStats(memory=self._memory_stats(), cpu=self._cpu_stats(), pids=self._pids_stats(),
                           blkio=self._blkio_stats())

    def _memory_stats(self) -> MemoryStats | None:
        p = self.path("memory")
        if p is None:
            return None

        def num(name: str) -> int:
            text = _fs.read_optional(os.path.join(p, name))
            return int(text.strip()) if text and text.strip().lstrip("-").isdigit() else 0

        limit = num("memory.limit_in_bytes")
        machine = host_memory()
        if machine and (limit <= 0 or limit > machine):
            limit = machine  # unlimited: Docker reports the host's memory
        return MemoryStats(
            usage=num("memory.usage_in_bytes"), max_usage=num("memory.max_usage_in_bytes"),
            failcnt=num("memory.failcnt"), limit=limit,
            stats=_fs.flat_keyed(_fs.read_optional(os.path.join(p, "memory.stat"))),
        )

    def _cpu_stats(self) -> CpuStats:
        total = kernel = user = 0
        percpu: tuple[int, ...] = ()
        acct = self.path("cpuacct")
        if acct is not None:
            text = _fs.read_optional(os.path.join(acct, "cpuacct.usage"))
            total = int(text.strip()) if text else 0
            percpu = tuple(int(x) for x in (_fs.read_optional(os.path.join(acct, "cpuacct.usage_percpu")) or "").split())
            st = _fs.flat_keyed(_fs.read_optional(os.path.join(acct, "cpuacct.stat")))
            user = st.get("user", 0) * USER_HZ_NS
            kernel = st.get("system", 0) * USER_HZ_NS
        cpu = self.path("cpu")
        st = _fs.flat_keyed(_fs.read_optional(os.path.join(cpu, "cpu.stat"))) if cpu is not None else {}
        return CpuStats(
            total_ns=total, kernel_ns=kernel, user_ns=user, percpu_ns=percpu,
            system_ns=system_cpu_usage(), online_cpus=online_cpus(),
            periods=st.get("nr_periods", 0), throttled_periods=st.get("nr_throttled", 0),
            throttled_ns=st.get("throttled_time", 0),
        )

    def _pids_stats(self) -> PidsStats | None:
        p = self.path("pids")
        if p is None:
            return None
        current = len(self.pids())
        cur = _fs.read_optional(os.path.join(p, "pids.current"))
        if cur and cur.strip().isdigit():
            current = int(cur)
        mx = (_fs.read_optional(os.path.join(p, "pids.max")) or "max").strip()
        return PidsStats(current=current, limit=int(mx) if mx.isdigit() else None)

    def _blkio_stats(self) -> BlkioStats:
        p = self.path("blkio")
        if p is None:
            return BlkioStats()
        return BlkioStats(service_bytes=_blkio_file(p, "blkio.io_service_bytes_recursive"),
                          serviced=_blkio_file(p, "blkio.io_serviced_recursive"))

    # what the container sees

    def container_mounts(self, own_namespace: bool = True) -> list:
        from engine.runtime.spec import MountSpec

        mounts = [
            MountSpec(
                destination="/sys/fs/cgroup", type="tmpfs", source="tmpfs",
                options=("rw", "nosuid", "nodev", "noexec", "mode=755"),
            )
        ]
        for h in self.layout.hierarchies:
            name = os.path.basename(h.mountpoint.rstrip("/")) or h.name
            if not own_namespace:
                mounts.append(MountSpec(
                    destination=f"/sys/fs/cgroup/{name}", type="bind", source=self._paths[h.name],
                    options=("rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"),
                ))
                continue
            mounts.append(
                MountSpec(
                    destination=f"/sys/fs/cgroup/{name}", type="cgroup", source="cgroup",
                    options=("ro", "nosuid", "nodev", "noexec") + h.controllers,
                )
            )
        return mounts
