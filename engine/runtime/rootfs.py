"""Rootfs plan data (Docker's default mounts, masked/readonly paths, /dev nodes), OCI mount
option parsing, and the overlay mount helpers (native, synchronous: call them in a thread)."""
from __future__ import annotations

import functools
import os

from engine.errors import SystemError_
from engine.runtime.spec import DeviceSpec, MountSpec

# Docker 20.10 (moby oci/defaults.go).
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

DEFAULT_DEVICES: tuple[DeviceSpec, ...] = (
    DeviceSpec("/dev/null", "c", 1, 3),
    DeviceSpec("/dev/zero", "c", 1, 5),
    DeviceSpec("/dev/full", "c", 1, 7),
    DeviceSpec("/dev/random", "c", 1, 8),
    DeviceSpec("/dev/urandom", "c", 1, 9),
    DeviceSpec("/dev/tty", "c", 5, 0),
)

#: (link path, target) created in the container's /dev; /dev/core only where the kernel has
#: a /proc/kcore (runc's rule: a link to nothing otherwise).
DEFAULT_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"),
) + ((("/dev/core", "/proc/kcore"),) if os.path.exists("/proc/kcore") else ())


#: Where `--init` finds its PID 1 in the container (Docker's path for docker-init).
INIT_PATH = "/sbin/docker-init"


def init_mount() -> MountSpec:
    """The read-only bind of pe-init (native/pe_init.c, built next to the engine package) at
    INIT_PATH, for a container started with `--init`."""
    import engine

    binary = os.path.join(os.path.dirname(engine.__file__), "pe-init")
    if not os.access(binary, os.X_OK):
        raise SystemError_(f"--init: {binary} is missing (build it with `pip install -e .`)")
    return MountSpec(INIT_PATH, "bind", binary, ("rbind", "rprivate", "ro"))


def default_mounts(privileged: bool = False) -> list[MountSpec]:
    """Docker's default mounts (oci.DefaultSpec + daemon defaults), without the cgroup
    mounts (engine.runtime.cgroups returns those). Privileged: /sys is read-write."""
    return [
        MountSpec("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        MountSpec("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        MountSpec("/dev/pts", "devpts", "devpts",
                  ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
        MountSpec("/sys", "sysfs", "sysfs",
                  ("nosuid", "noexec", "nodev") + (() if privileged else ("ro",))),
        MountSpec("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        MountSpec("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
    ]


# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# OCI option → (clear?, flag), as runc's parseMountOptions.
_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS), "atime": (True, MS_NOATIME), "bind": (False, MS_BIND),
    "defaults": (False, 0), "dev": (True, MS_NODEV), "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC), "exec": (True, MS_NOEXEC), "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME), "nodev": (False, MS_NODEV), "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC), "nomand": (True, MS_MANDLOCK), "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME), "nosuid": (False, MS_NOSUID),
    "rbind": (False, MS_BIND | MS_REC), "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT), "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "strictatime": (False, MS_STRICTATIME), "suid": (True, MS_NOSUID), "sync": (False, MS_SYNCHRONOUS),
}
_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC, "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}


#: The options parse_mount_options takes as flags (every other one is file system data).
MOUNT_FLAG_OPTIONS = frozenset(_FLAGS) | frozenset(_PROPAGATION)


@functools.lru_cache(maxsize=1024)
def parse_mount_options(mount: MountSpec) -> tuple[int, int, str]:
    """(flags, propagation, data) for mount(2). A "bind" mount without bind/rbind in its
    options is recursive, as Docker's binds are. Cached: most mounts are the same for every
    container (MountSpec is frozen)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for option in mount.options:
        if option in _FLAGS:
            clear, flag = _FLAGS[option]
            flags = flags & ~flag if clear else flags | flag
        elif option in _PROPAGATION:
            propagation = _PROPAGATION[option]
        else:
            data.append(option)
    if mount.type == "bind" and not flags & MS_BIND:
        flags |= MS_BIND | MS_REC
    return flags, propagation, ",".join(data)


def mount_overlay(lowerdirs, upperdir: str, workdir: str, target: str) -> None:
    """Mount an overlay at `target`; `lowerdirs` top first. New mount API with one
    `lowerdir+` per layer (no page-size limit), mount(2) fallback on old kernels."""
    from engine.runtime import _native

    _native.mount_overlay(list(lowerdirs), upperdir, workdir, target)


def mount_shm(target: str, size: int) -> None:
    """A /dev/shm tmpfs at `target` on the host, as dockerd makes one for an IPC-shareable
    container (the container and those joining its IPC bind-mount it)."""
    from engine.runtime import _native

    _native.mount_tmpfs(target, f"mode=1777,size={size}")


def unmount(target: str) -> None:
    """Lazy unmount (MNT_DETACH); "not mounted" / missing target is not an error."""
    from engine.runtime import _native

    _native.unmount(target)


def read_in_root(root: str, path: str) -> bytes | None:
    """The bytes of `path` inside the container's rootfs `root`, every symlink resolved as if
    `root` were "/" (an image cannot point /etc/passwd at a host file); None when it cannot be
    opened or read. Blocking: a worker thread."""
    from engine.runtime import _native

    try:
        fd = _native.open_in_root(root, path)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks)


def mkdir_in_root(root: str, path: str) -> None:
    """mkdir -p of `path` inside the container's rootfs `root`, symlinks resolved as if `root`
    were "/" (Docker makes a missing WorkingDir; the image cannot have it made on the host).
    Blocking: a worker thread."""
    from engine.runtime import _native

    _native.mkdir_in_root(root, path)


def remove_tree(path: str) -> None:
    """rm -rf in one C call (the GIL is released once, not at every unlink): never follows
    symlinks nor enters another file system. Missing is not an error; raises OSError."""
    from engine.runtime import _native

    _native.remove_tree(path)

