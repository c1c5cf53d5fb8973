"""Container runtime: OCI-style spec → rootfs (overlay) → native spawn.

Blocking helpers (mount_overlay, mount_shm, unmount, mkdir_in_root, read_in_root, remove_tree,
resize) are synchronous: call all but resize in trio.to_thread. engine.runtime.hostops runs
lists of such operations on a native thread instead (awaitable). The cgroups package (engine.runtime.cgroups) is separate."""
from engine.runtime.caps import ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capability_mask, resolve_capabilities
from engine.runtime.rootfs import (
    DEFAULT_DEVICES,
    DEFAULT_SYMLINKS,
    INIT_PATH,
    MASKED_PATHS,
    MOUNT_FLAG_OPTIONS,
    READONLY_PATHS,
    default_mounts,
    init_mount,
    mkdir_in_root,
    mount_overlay,
    mount_shm,
    parse_mount_options,
    read_in_root,
    remove_tree,
    unmount,
)
from engine.runtime.seccomp import program_for as seccomp_program
from engine.runtime.spawn import ContainerProcess, SpawnError, Stdio, resize, spawn_container, spawn_exec
from engine.runtime.spec import DeviceSpec, MountSpec, ProcessSpec, RuntimeSpec
from engine.runtime.runtime import Adopted, HeldOutput, InProcessRuntime, Runtime
from engine.runtime.spawner import SpawnerRuntime, enlarge_pipe

__all__ = [
    "ALL_CAPABILITIES", "Adopted", "HeldOutput", "InProcessRuntime", "Runtime", "SpawnerRuntime", "enlarge_pipe", "DEFAULT_CAPABILITIES", "DEFAULT_DEVICES", "DEFAULT_SYMLINKS", "INIT_PATH", "MASKED_PATHS", "MOUNT_FLAG_OPTIONS",
    "READONLY_PATHS", "ContainerProcess", "DeviceSpec", "MountSpec", "ProcessSpec", "RuntimeSpec",
    "SpawnError", "Stdio", "capability_mask", "default_mounts", "init_mount", "mkdir_in_root", "mount_overlay", "mount_shm", "parse_mount_options",
    "read_in_root", "remove_tree", "resize", "resolve_capabilities", "seccomp_program", "spawn_container", "spawn_exec", "unmount",
]
