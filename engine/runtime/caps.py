"""Linux capabilities: names, Docker's default set, and --cap-add/--cap-drop resolution."""
from __future__ import annotations

import functools

from collections.abc import Iterable

from engine.errors import InvalidParameter

# Index = capability number (linux/capability.h).
_CAP_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(_CAP_NAMES)}


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return min(int(f.read().strip()), len(_CAP_NAMES) - 1)
    except (OSError, ValueError):
        return len(_CAP_NAMES) - 1


#: Every capability this kernel knows (what "ALL" and --privileged grant).
ALL_CAPABILITIES: tuple[str, ...] = _CAP_NAMES[: _last_cap() + 1]

#: Docker 20.10's default set (moby oci/caps/defaults.go), CapEff 00000000a80425fb.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)


def _normalize(names: Iterable[str] | None, field: str = "") -> list[str]:
    """CAP_-prefixed upper-case names; an unknown one is refused naming `field` (CapAdd…)."""
    out: list[str] = []
    for raw in names or ():
        name = raw.strip().upper()
        if name != "ALL" and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != "ALL" and name not in CAP_NUMBERS:
            raise InvalidParameter(f'invalid {field}: ' * bool(field) + f'unknown capability: "{name}"')
        if name not in out:
            out.append(name)
    return out


def resolve_capabilities(add: Iterable[str] | None = None, drop: Iterable[str] | None = None,
                         privileged: bool = False,
                         basics: Iterable[str] = DEFAULT_CAPABILITIES) -> tuple[str, ...]:
    """Docker's TweakCapabilities: privileged → all; "ALL" in add → all minus drop;
    "ALL" in drop → only add; else basics minus drop plus add. Names are case-insensitive,
    with or without the CAP_ prefix; an unknown name raises InvalidParameter."""
    capdrop = _normalize(drop, "CapDrop")
    capadd = _normalize(add, "CapAdd")
    if privileged:
        return grantable_capabilities()
    if "ALL" in capadd:
        return tuple(c for c in grantable_capabilities() if c not in capdrop)
    if "ALL" in capdrop:
        return tuple(c for c in capadd if c != "ALL")
    caps = [c for c in basics if c not in capdrop]
    caps += [c for c in capadd if c not in caps]
    return tuple(caps)


@functools.cache
def grantable_capabilities() -> tuple[str, ...]:
    """"ALL" as the daemon can grant it: the kernel's capabilities within our own bounding set
    (a sandboxed daemon may lack some, e.g. CAP_SYS_RESOURCE, and cannot hand them out)."""
    try:
        with open("/proc/self/status") as f:
            bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        return ALL_CAPABILITIES
    return tuple(c for c in ALL_CAPABILITIES if bounding >> CAP_NUMBERS[c] & 1)


def capability_mask(names: Iterable[str]) -> int:
    """Bit mask (bit n = capability n) of `names`, limited to what this kernel knows."""
    return _mask(tuple(names))


@functools.lru_cache(maxsize=256)
def _mask(names: tuple[str, ...]) -> int:
    """Cached: a container's set is one of a few (Docker's default, the same adds and drops)."""
    mask = 0
    known = len(ALL_CAPABILITIES)
    for name in names:
        n = CAP_NUMBERS[_normalize([name])[0]]
        if n < known:
            mask |= 1 << n
    return mask
