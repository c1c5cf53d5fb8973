"""Container cgroups for v1 (incl. hybrid hosts) and v2 (pure unified).

    m = for_container(parent="pyengine", container_id=cid)   # mode detected once
    warnings = m.create(Resources(memory=64 << 20))
    m.add_process(pid); m.freeze(); m.thaw(); m.stats(); m.destroy()

All of it is sync file IO meant to run inside trio.to_thread.run_sync.

Placement: a relative `parent` lives under this process's own cgroup in each v1
hierarchy (runc's rule for relative paths; on a normal host that is the hierarchy root),
an absolute one under the mount point. On v2 the parent is always under the mount point
(a cgroup with processes cannot delegate controllers)."""

import os

from ._detect import Hierarchy, Layout, build_layout, detect_mode, layout
from ._manager import CgroupManager, check_name
from ._devices import DEFAULT_DEVICE_RULES, DeviceRule
from ._resources import (
    BLKIO_DEVICE_UNSUPPORTED_WARNINGS, BLKIO_WEIGHT_UNSUPPORTED_WARNING, OOM_KILL_DISABLE_NO_LIMIT_WARNING,
    OOM_KILL_DISABLE_UNSUPPORTED_WARNING, SWAP_UNSUPPORTED_WARNING, SWAPPINESS_UNSUPPORTED_WARNING, Resources,
    check_cfs, check_memory_reservation, shares_to_weight,
)
from ._stats import BlkioEntry, BlkioStats, CgroupStats, CpuStats, MemoryStats, PidsStats
from ._support import Support, check_cpusets, detect_support, parse_cpu_list, support
from . import _v1
from ._v1 import V1Manager
from ._v2 import V2Manager

__all__ = [
    "CgroupManager", "Resources", "for_container", "detect_mode", "cleanup_stale", "remove_parent",
    "Layout", "Hierarchy", "BLKIO_WEIGHT_UNSUPPORTED_WARNING", "DEFAULT_DEVICE_RULES", "DeviceRule", "SWAP_UNSUPPORTED_WARNING",
    "shares_to_weight", "V1Manager", "V2Manager", "Support", "detect_support", "support",
    "BLKIO_DEVICE_UNSUPPORTED_WARNINGS", "OOM_KILL_DISABLE_NO_LIMIT_WARNING", "OOM_KILL_DISABLE_UNSUPPORTED_WARNING",
    "SWAPPINESS_UNSUPPORTED_WARNING", "check_cfs", "check_memory_reservation", "check_name", "build_layout", "check_cpusets", "parse_cpu_list",
    "BlkioEntry", "BlkioStats", "CgroupStats", "CpuStats", "MemoryStats", "PidsStats",
]


def for_container(parent: str, container_id: str, _layout: Layout | None = None) -> CgroupManager:
    check_name("cgroup parent", parent, allow_slash=True)
    check_name("container id", container_id)
    lay = _layout or layout()
    cls = V1Manager if lay.mode == "v1" else V2Manager
    return cls(lay, parent, container_id)


def cleanup_stale(parent: str, keep_ids, _layout: Layout | None = None) -> list[str]:
    """Daemon startup: destroy every child cgroup of `parent` whose name is not in
    keep_ids. Returns the names removed."""
    keep = set(keep_ids)
    probe = for_container(parent, "probe", _layout)
    names: set[str] = set()
    for d in probe.parent_dirs():
        try:
            names.update(e.name for e in os.scandir(d) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            continue
    removed = []
    for name in sorted(names - keep):
        for_container(parent, name, _layout).destroy()
        removed.append(name)
    return removed


def remove_parent(parent: str, _layout: Layout | None = None) -> None:
    """Daemon shutdown: remove `parent` in every hierarchy once no container cgroup is left
    under it (a busy or missing directory is left alone)."""
    probe = for_container(parent, "probe", _layout)
    _v1.forget_parent(probe)
    for d in probe.parent_dirs():
        try:
            os.rmdir(d)
        except OSError:
            pass
