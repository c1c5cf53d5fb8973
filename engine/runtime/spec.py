"""The runtime's internal spec: built once from the API config, turned into native's flat
struct at spawn time (engine/runtime/_native.py). Frozen attrs; sequences become tuples."""
from __future__ import annotations

import attrs

from engine.runtime.caps import DEFAULT_CAPABILITIES


def _tuple(value) -> tuple:
    return tuple(value) if value is not None else ()


def _size(value):
    if value is None:
        return None
    rows, cols = value
    return (int(rows), int(cols))


@attrs.frozen
class ProcessSpec:
    """The process to exec. `capabilities` are "CAP_X" names applied to the bounding,
    effective and permitted sets (inheritable/ambient stay empty, as in Docker: a non-root
    uid ends up with empty effective/permitted after execve)."""

    args: tuple[str, ...] = attrs.field(converter=_tuple)
    env: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = attrs.field(default=(), converter=_tuple)
    capabilities: tuple[str, ...] = attrs.field(default=DEFAULT_CAPABILITIES, converter=_tuple)
    no_new_privileges: bool = False
    # Every signal blocked from the clone through execve: for an init (pe-init) that takes its
    # signals with sigwaitinfo, so one sent before it got there is pending, not dropped.
    exec_signals_blocked: bool = False
    # (resource, soft, hard); a negative limit means RLIM_INFINITY.
    rlimits: tuple[tuple[int, int, int], ...] = attrs.field(default=(), converter=_tuple)
    tty: bool = False
    # Initial window size (rows, cols) of the pty when tty.
    terminal_size: tuple[int, int] | None = attrs.field(default=None, converter=_size)
    # Compiled seccomp filter (engine.runtime.seccomp.program_for), installed right before
    # execve; None = unconfined.
    seccomp_bpf: bytes | None = None
    # /proc/self/oom_score_adj of the process (-1000..1000), written before anything else runs
    # in it; 0 by default so the daemon's own score never leaks into containers.
    oom_score_adj: int = 0


@attrs.frozen
class MountSpec:
    """One mount, OCI style: `options` mixes flags ("ro", "rbind", "nosuid", "rprivate", …)
    and filesystem data ("mode=755", "size=65536k", cgroup controller names)."""

    destination: str
    type: str
    source: str = ""
    options: tuple[str, ...] = attrs.field(default=(), converter=_tuple)


@attrs.frozen
class DeviceSpec:
    """A device node created in the container (mknod)."""

    path: str
    type: str = "c"
    major: int = 0
    minor: int = 0
    mode: int = 0o666
    uid: int = 0
    gid: int = 0


def _default_namespaces() -> dict:
    return {"pid": None, "mnt": None, "uts": None, "ipc": None, "net": None, "cgroup": None}


def _default_mounts() -> tuple:
    from engine.runtime.rootfs import default_mounts

    return tuple(default_mounts())


def _default_masked() -> tuple:
    from engine.runtime.rootfs import MASKED_PATHS

    return MASKED_PATHS


def _default_readonly() -> tuple:
    from engine.runtime.rootfs import READONLY_PATHS

    return READONLY_PATHS


def _default_devices() -> tuple:
    from engine.runtime.rootfs import DEFAULT_DEVICES

    return DEFAULT_DEVICES


@attrs.frozen
class RuntimeSpec:
    """Everything the child needs between clone and exec.

    `rootfs` is the host path of an already-mounted root (overlay merged dir). `namespaces`
    maps "pid", "mnt", "uts", "ipc", "net", "cgroup" to None (create) or a path such as
    /proc/<pid>/ns/net (join); a namespace absent from the dict is the host's."""

    rootfs: str
    process: ProcessSpec
    hostname: str = ""
    readonly_rootfs: bool = False
    mounts: tuple[MountSpec, ...] = attrs.field(factory=_default_mounts, converter=_tuple)
    masked_paths: tuple[str, ...] = attrs.field(factory=_default_masked, converter=_tuple)
    readonly_paths: tuple[str, ...] = attrs.field(factory=_default_readonly, converter=_tuple)
    namespaces: dict = attrs.field(factory=_default_namespaces, converter=dict)
    privileged: bool = False
    devices: tuple[DeviceSpec, ...] = attrs.field(factory=_default_devices, converter=_tuple)
    # cgroup v1: the `tasks` files the child writes itself into before anything else
    # (CgroupManager.self_join_files); empty: the caller places it (prepare).
    cgroup_tasks: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    # --sysctl: ("net.ipv4.ip_forward", "1") pairs written in the container's namespaces
    # (already checked to be namespaced ones: engine.containers.sysctls).
    sysctls: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_tuple)
