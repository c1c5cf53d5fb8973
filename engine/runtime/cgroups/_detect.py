"""Find the cgroup hierarchies once: v1 (incl. hybrid) or v2 (pure unified).

Paths come from /proc/self/mountinfo (mount point + the cgroup the mount shows as its
root) and /proc/self/cgroup (our own cgroup in each hierarchy); nothing is assumed about
/sys/fs/cgroup's layout."""

import functools
import os

import attrs

from engine.errors import SystemError_
from engine.runtime.mountinfo import unescape

MOUNTINFO = "/proc/self/mountinfo"
PROC_CGROUP = "/proc/self/cgroup"


@attrs.define(frozen=True)
class Hierarchy:
    """One mounted hierarchy. `name` is the key in /proc/self/cgroup ("memory",
    "cpu,cpuacct", "name=systemd"; "" for v2); `own` is the directory of the cgroup this
    process lives in (the place a relative parent is created under)."""

    name: str
    controllers: tuple[str, ...]
    mountpoint: str
    mount_root: str
    own: str


@attrs.define(frozen=True)
class Layout:
    mode: str  # "v1" | "v2"
    hierarchies: tuple[Hierarchy, ...]

    def by_controller(self, controller: str) -> Hierarchy | None:
        for h in self.hierarchies:
            if controller in h.controllers:
                return h
        return None


_V1_CONTROLLERS = {
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc",
}


def parse_mountinfo(text: str) -> list[tuple[str, str, str, list[str]]]:
    """(fstype, mount root, mount point, super options) for every cgroup/cgroup2 mount."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype = rfields[0]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        out.append((fstype, unescape(fields[3]), unescape(fields[4]), rfields[2].split(",")))
    return out


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup → {hierarchy key: path}; the v2 line is under ""."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def _own_dir(mountpoint: str, mount_root: str, own_path: str | None) -> str:
    """Our cgroup's directory under a mount. When our cgroup is outside what the mount
    shows (or unknown), the mount point itself is the closest we can get."""
    if own_path is None:
        return mountpoint
    root = mount_root.rstrip("/")
    if root and not (own_path == root or own_path.startswith(root + "/")):
        return mountpoint
    rel = own_path[len(root):].lstrip("/")
    return os.path.join(mountpoint, rel) if rel else mountpoint


def build_layout(mountinfo: str, proc_cgroup: str) -> Layout:
    mounts = parse_mountinfo(mountinfo)
    own = parse_proc_cgroup(proc_cgroup)
    v1: dict[str, Hierarchy] = {}
    v2: Hierarchy | None = None
    for fstype, root, mountpoint, opts in mounts:
        if fstype == "cgroup2":
            if v2 is None:
                v2 = Hierarchy("", (), mountpoint, root, _own_dir(mountpoint, root, own.get("")))
            continue
        ctrls = tuple(o for o in opts if o in _V1_CONTROLLERS)
        named = [o for o in opts if o.startswith("name=")]
        # /proc/self/cgroup lists co-mounted controllers comma-joined, in kernel order;
        # match on the set to be order-independent.
        key = None
        want = set(ctrls) | set(named)
        for k in own:
            if k and set(k.split(",")) == want:
                key = k
                break
        if key is None:
            key = ",".join(list(ctrls) + named)
        if not key or key in v1:
            continue  # bind mounts of the same hierarchy: keep the first
        controllers = ctrls + tuple(named)
        v1[key] = Hierarchy(key, controllers, mountpoint, root, _own_dir(mountpoint, root, own.get(key)))
    if any(h.controllers and not h.controllers[0].startswith("name=") for h in v1.values()):
        return Layout("v1", tuple(v1.values()))
    if v2 is not None:
        return Layout("v2", (v2,))
    raise SystemError_("cgroups: no cgroup hierarchy is mounted (read /proc/self/mountinfo)")


@functools.cache
def layout() -> Layout:
    """The host's hierarchies, detected once per process."""
    with open(MOUNTINFO) as f:
        mi = f.read()
    with open(PROC_CGROUP) as f:
        pc = f.read()
    return build_layout(mi, pc)


def detect_mode() -> str:
    """"v1" when controllers are on v1 hierarchies (hybrid counts as v1), else "v2"."""
    return layout().mode
