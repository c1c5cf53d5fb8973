"""Spec building, capability resolution and mount option parsing (no root needed)."""
from __future__ import annotations

import pytest

from engine.errors import InvalidParameter
from engine.runtime import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    MASKED_PATHS,
    READONLY_PATHS,
    MountSpec,
    ProcessSpec,
    RuntimeSpec,
    capability_mask,
    default_mounts,
    parse_mount_options,
    resolve_capabilities,
)
from engine.runtime.rootfs import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_STRICTATIME
from engine.runtime.caps import grantable_capabilities


def test_default_caps_mask_matches_docker():
    assert len(DEFAULT_CAPABILITIES) == 14
    assert capability_mask(DEFAULT_CAPABILITIES) == 0xA80425FB
    assert resolve_capabilities() == DEFAULT_CAPABILITIES


def test_cap_add_drop_normalized():
    caps = resolve_capabilities(add=["net_admin", "CAP_SYS_PTRACE"], drop=["mknod", "Cap_Chown"])
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_PTRACE" in caps
    assert "CAP_MKNOD" not in caps and "CAP_CHOWN" not in caps
    assert len(caps) == 14


def test_cap_all():
    grantable = grantable_capabilities()
    assert set(grantable) <= set(ALL_CAPABILITIES) and "CAP_SYS_ADMIN" in grantable
    assert resolve_capabilities(add=["ALL"]) == grantable
    assert resolve_capabilities(add=["all"], drop=["NET_RAW"]) == tuple(c for c in grantable if c != "CAP_NET_RAW")
    assert resolve_capabilities(add=["chown"], drop=["ALL"]) == ("CAP_CHOWN",)
    assert resolve_capabilities(drop=["all"]) == ()
    assert resolve_capabilities(drop=["chown"], privileged=True) == grantable


def test_grantable_capabilities_follow_the_bounding_set():
    bounding = next(int(line.split()[1], 16) for line in open("/proc/self/status") if line.startswith("CapBnd:"))
    assert capability_mask(grantable_capabilities()) == bounding & capability_mask(ALL_CAPABILITIES)
    assert capability_mask(ALL_CAPABILITIES) == (1 << len(ALL_CAPABILITIES)) - 1


def test_unknown_cap():
    with pytest.raises(InvalidParameter, match='unknown capability: "CAP_FOO"'):
        resolve_capabilities(add=["foo"])
    with pytest.raises(InvalidParameter, match="CAP_BAR"):
        resolve_capabilities(drop=["cap_bar"])


def test_default_mounts_docker_shape():
    mounts = {m.destination: m for m in default_mounts()}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/dev/mqueue", "/dev/shm"]
    assert mounts["/dev"].type == "tmpfs" and "size=65536k" in mounts["/dev"].options
    assert {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"} <= set(mounts["/dev/pts"].options)
    assert "ro" in mounts["/sys"].options
    assert "ro" not in {m.destination: m for m in default_mounts(privileged=True)}["/sys"].options
    assert "/proc/kcore" in MASKED_PATHS and "/sys/firmware" in MASKED_PATHS and len(MASKED_PATHS) == 10
    assert READONLY_PATHS == ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def test_parse_mount_options():
    flags, prop, data = parse_mount_options(MountSpec("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")))
    assert flags == MS_NOSUID | MS_STRICTATIME and prop == 0 and data == "mode=755,size=65536k"
    flags, prop, data = parse_mount_options(MountSpec("/data", "bind", "/src", ("rbind", "rprivate", "ro")))
    assert flags == MS_BIND | MS_REC | MS_RDONLY and prop == MS_PRIVATE | MS_REC and data == ""
    # A bind mount without bind/rbind is recursive; "rw" clears "ro".
    flags, _, _ = parse_mount_options(MountSpec("/data", "bind", "/src", ("ro", "rw")))
    assert flags == MS_BIND | MS_REC
    flags, _, data = parse_mount_options(MountSpec("/sys/fs/cgroup/memory", "cgroup", "cgroup", ("ro", "nosuid", "nodev", "noexec", "memory")))
    assert flags == MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC and data == "memory"


def test_specs_are_frozen_with_tuples():
    p = ProcessSpec(args=["sh", "-c", "true"], env=["A=1"], rlimits=[(7, 1024, 1024)], terminal_size=[24, 80])
    assert p.args == ("sh", "-c", "true") and p.env == ("A=1",) and p.terminal_size == (24, 80)
    assert p.capabilities == DEFAULT_CAPABILITIES and p.cwd == "/" and p.uid == 0
    spec = RuntimeSpec(rootfs="/r", process=p)
    assert spec.mounts == tuple(default_mounts())
    assert spec.masked_paths == MASKED_PATHS and spec.readonly_paths == READONLY_PATHS
    assert set(spec.namespaces) == {"pid", "mnt", "uts", "ipc", "net", "cgroup"}
    assert all(v is None for v in spec.namespaces.values())
    assert {d.path for d in spec.devices} >= {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
    with pytest.raises(AttributeError):
        spec.rootfs = "/other"  # type: ignore[misc]


def test_flat_spec_shares_constant_parts_and_packs_the_same_after_the_cache_is_emptied():
    """The C copies of per-profile constants (default mounts, devices, symlinks, masked and
    read-only paths) are built once and shared; a spec packs to the same bytes whether they
    came from the cache or were just made, and a user's bind source is never shared."""
    from engine.runtime import _native
    from engine.runtime.rootfs import (DEFAULT_DEVICES, DEFAULT_SYMLINKS, MASKED_PATHS, READONLY_PATHS,
                                       default_mounts, parse_mount_options)

    def spec(hosts_path):
        mounts = []
        for m in default_mounts():
            flags, propagation, data = parse_mount_options(m)
            mounts.append((m.source or m.type, m.destination, None if flags & 4096 else m.type, flags, propagation, data))
        mounts.append((hosts_path, "/etc/hosts", None, 4096 | 16384, 0, ""))
        return _native.build_spec(
            mode=_native.MODE_CONTAINER, use_helper=False, clone_flags=0, unshare_cgroup=False, joins=[],
            rootfs="/r", readonly_rootfs=False, hostname="h", mounts=mounts, devices=DEFAULT_DEVICES,
            symlinks=DEFAULT_SYMLINKS, masked=MASKED_PATHS, readonly=READONLY_PATHS, argv=["true"], envp=["A=1"],
            cwd="/", uid=0, gid=0, groups=[], caps=0, no_new_privileges=False, rlimits=[], stdio=(-1, -1, -1),
            tty=False, tty_size=None)

    first = _native.pack_spec(spec("/c1/hosts"))
    cached = spec("/c1/hosts")
    assert cached.ptr.masked_paths == spec("/c2/hosts").ptr.masked_paths  # one shared array
    assert cached.ptr.mounts[len(default_mounts())].source != spec("/c1/hosts").ptr.mounts[len(default_mounts())].source
    assert _native.pack_spec(cached) == first
    _native._const_strs.clear()
    _native._const_arrays.clear()
    assert _native.pack_spec(cached) == first  # a live spec keeps what it points into
    assert _native.pack_spec(spec("/c1/hosts")) == first
    assert parse_mount_options(default_mounts()[0]) is parse_mount_options(default_mounts()[0])
