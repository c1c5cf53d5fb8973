"""cgroup v2 (pure unified hosts): one directory, controllers enabled down the path."""

import os


from . import _fs
from ._detect import Layout
from ._devices import DEFAULT_DEVICE_RULES, attach_device_filter
from ._manager import CgroupManager, host_memory, mkdir_chain, online_cpus, system_cpu_usage
from ._resources import BLKIO_WEIGHT_UNSUPPORTED_WARNING, SWAP_UNSUPPORTED_WARNING, Resources, shares_to_weight
from ._stats import BlkioEntry, BlkioStats, CgroupStats, CpuStats, MemoryStats, PidsStats

WANTED_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")


def _max(v: int) -> str:
    return "max" if v < 0 else str(v)


def set_memory(path: str, res: Resources) -> list[str]:
    warnings: list[str] = []
    if res.memory_reservation:
        _fs.write(os.path.join(path, "memory.low"), res.memory_reservation)
    memsw = res.memsw_limit()
    if res.memory:
        _fs.write(os.path.join(path, "memory.max"), res.memory)
    if memsw is not None:
        swap_file = os.path.join(path, "memory.swap.max")
        if not os.path.exists(swap_file):
            if res.memory and res.memory_swap != -1:
                warnings.append(SWAP_UNSUPPORTED_WARNING)
        else:
            # v2 limits swap alone; Docker's memory_swap is memory+swap.
            _fs.write(swap_file, "max" if memsw < 0 else max(0, memsw - res.memory))
    return warnings


def set_cpu(path: str, res: Resources) -> list[str]:
    if res.cpu_shares:
        _fs.write(os.path.join(path, "cpu.weight"), shares_to_weight(res.cpu_shares))
    cfs = res.cfs()
    if cfs is not None:
        quota, period = cfs
        _fs.write(os.path.join(path, "cpu.max"), f"{_max(quota)} {period}")
    return []


def set_cpuset(path: str, res: Resources) -> list[str]:
    if res.cpuset_cpus:
        _fs.write(os.path.join(path, "cpuset.cpus"), res.cpuset_cpus)
    if res.cpuset_mems:
        _fs.write(os.path.join(path, "cpuset.mems"), res.cpuset_mems)
    return []


def set_pids(path: str, res: Resources) -> list[str]:
    limit = res.pids_max()
    if limit is not None:
        _fs.write(os.path.join(path, "pids.max"), _max(limit))
    return []


def set_io(path: str, res: Resources) -> list[str]:
    keys = {"read_bps": "rbps", "write_bps": "wbps", "read_iops": "riops", "write_iops": "wiops"}
    for kind, entries in res.throttles():
        for major, minor, rate in entries:
            _fs.write(os.path.join(path, "io.max"), f"{major}:{minor} {keys[kind]}={rate}")
    for major, minor, weight in res.blkio_weight_device:
        if os.path.exists(os.path.join(path, "io.bfq.weight")):
            _fs.write(os.path.join(path, "io.bfq.weight"), f"{major}:{minor} {weight}")
        elif os.path.exists(os.path.join(path, "io.weight")):
            _fs.write(os.path.join(path, "io.weight"), f"{major}:{minor} {1 + (weight - 10) * 9999 // 990}")
    if not res.blkio_weight:
        return []
    bfq = os.path.join(path, "io.bfq.weight")
    if os.path.exists(bfq):  # BFQ takes blkio's 10..1000 as is
        _fs.write(bfq, res.blkio_weight)
        return []
    weight = os.path.join(path, "io.weight")
    if os.path.exists(weight):  # [10, 1000] → [1, 10000], as runc converts it
        _fs.write(weight, f"default {1 + (res.blkio_weight - 10) * 9999 // 990}")
        return []
    return [BLKIO_WEIGHT_UNSUPPORTED_WARNING]


def enable_controllers(path: str) -> None:
    """Let `path`'s children use every wanted controller `path` has."""
    have = set(_fs.read(os.path.join(path, "cgroup.controllers")).split())
    enabled = set(_fs.read(os.path.join(path, "cgroup.subtree_control")).split())
    want = [c for c in WANTED_CONTROLLERS if c in have and c not in enabled]
    if want:
        _fs.write(os.path.join(path, "cgroup.subtree_control"), " ".join("+" + c for c in want))


class V2Manager(CgroupManager):
    mode = "v2"

    def __init__(self, layout: Layout, parent: str, container_id: str):
        self.layout = layout
        self.parent = parent
        self.container_id = container_id
        h = layout.hierarchies[0]
        # v2's "no internal processes" rule: a cgroup holding the daemon cannot hand
        # controllers to children, so parents are always placed from the mount root.
        self.base = h.mountpoint
        self._path = os.path.join(self.base, parent.strip("/"), container_id)

    def dirs(self) -> list[str]:
        return [self._path]

    def path(self, controller: str = "") -> str:
        return self._path

    def parent_dirs(self) -> list[str]:
        return [os.path.dirname(self._path)]

    def create(self, resources: Resources) -> list[str]:
        resources.validate()
        made: list[str] = []
        try:
            enable_controllers(self.base)
            mkdir_chain(self.base, os.path.join(self.parent.strip("/"), self.container_id), made)
            cur = self.base
            for part in self.parent.strip("/").split("/"):
                cur = os.path.join(cur, part)
                enable_controllers(cur)
            warnings = self._apply(resources)
            if not resources.allow_all_devices:
                attach_device_filter(self._path, DEFAULT_DEVICE_RULES + resources.device_rules)
        except BaseException:
            if self._path in made:
                try:
                    _fs.rmdir_tree(self._path)
                except OSError:
                    pass
            raise
        return warnings

    def update(self, resources: Resources) -> list[str]:
        resources.validate()
        return self._apply(resources)

    def _apply(self, res: Resources) -> list[str]:
        warnings: list[str] = []
        for fn in (set_memory, set_cpu, set_cpuset, set_pids, set_io):
            warnings += fn(self._path, res)
        return warnings

    def add_process(self, pid: int) -> None:
        _fs.write(os.path.join(self._path, "cgroup.procs"), pid)

    def pids(self) -> list[int]:
        return _fs.read_pids(os.path.join(self._path, "cgroup.procs"))

    def _request_freeze(self, frozen: bool) -> None:
        _fs.write(os.path.join(self._path, "cgroup.freeze"), "1" if frozen else "0")

    def _freeze_state(self) -> str:
        events = _fs.flat_keyed(_fs.read(os.path.join(self._path, "cgroup.events")))
        want = (_fs.read_optional(os.path.join(self._path, "cgroup.freeze")) or "0").strip()
        if events.get("frozen") == 1:
            return "FROZEN"
        return "FREEZING" if want == "1" else "THAWED"

    def is_frozen(self) -> bool:
        events = _fs.read_optional(os.path.join(self._path, "cgroup.events"))
        return _fs.flat_keyed(events).get("frozen") == 1

    def oom_kill_count(self) -> int:
        return _fs.flat_keyed(_fs.read_optional(os.path.join(self._path, "memory.events"))).get("oom_kill", 0)

    def _num(self, name: str) -> int | None:
        text = (_fs.read_optional(os.path.join(self._path, name)) or "").strip()
        return int(text) if text.isdigit() else None

    def stats(self) -> CgroupStats:
        p = self._path
        limit = self._num("memory.max") or 0
        machine = host_memory()
        if machine and (limit <= 0 or limit > machine):
            limit = machine
        memory = MemoryStats(
            usage=self._num("memory.current") or 0, limit=limit, max_usage=self._num("memory.peak"),
            stats=_fs.flat_keyed(_fs.read_optional(os.path.join(p, "memory.stat"))),
        )
        cpu = _fs.flat_keyed(_fs.read_optional(os.path.join(p, "cpu.stat")))
        cpu_stats = CpuStats(
            total_ns=cpu.get("usage_usec", 0) * 1000, kernel_ns=cpu.get("system_usec", 0) * 1000,
            user_ns=cpu.get("user_usec", 0) * 1000, system_ns=system_cpu_usage(), online_cpus=online_cpus(),
            periods=cpu.get("nr_periods", 0), throttled_periods=cpu.get("nr_throttled", 0),
            throttled_ns=cpu.get("throttled_usec", 0) * 1000,
        )
        pids = PidsStats(current=self._num("pids.current") or 0, limit=self._num("pids.max"))
        io = []
        for line in (_fs.read_optional(os.path.join(p, "io.stat")) or "").splitlines():
            parts = line.split()
            if not parts or ":" not in parts[0]:
                continue
            major, minor = (int(x) for x in parts[0].split(":", 1))
            kv = dict(x.split("=", 1) for x in parts[1:] if "=" in x)
            for key, op in (("rbytes", "read"), ("wbytes", "write")):
                if key in kv:
                    io.append(BlkioEntry(major, minor, op, int(kv[key])))
        return CgroupStats(memory=memory, cpu=cpu_stats, pids=pids, blkio=BlkioStats(service_bytes=tuple(io) or None))

    def container_mounts(self, own_namespace: bool = True) -> list:
        from engine.runtime.spec import MountSpec

        if not own_namespace:
            return [MountSpec(destination="/sys/fs/cgroup", type="bind", source=self._path,
                              options=("rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"))]
        return [
            MountSpec(
                destination="/sys/fs/cgroup", type="cgroup2", source="cgroup",
                options=("ro", "nosuid", "nodev", "noexec"),
            )
        ]
