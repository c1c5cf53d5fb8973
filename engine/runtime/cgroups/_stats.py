"""A cgroup's counters as read for `docker stats`. v1 and v2 read different files; a counter
one of them does not have is None (engine.api writes Docker's JSON from these)."""

from __future__ import annotations

import attrs


@attrs.frozen
class CpuStats:
    total_ns: int = 0
    kernel_ns: int = 0
    user_ns: int = 0
    percpu_ns: tuple[int, ...] | None = None  # v1 only (cpuacct.usage_percpu)
    system_ns: int = 0  # the host's CPU time (the base of a percentage)
    online_cpus: int = 0
    periods: int = 0
    throttled_periods: int = 0
    throttled_ns: int = 0


@attrs.frozen
class MemoryStats:
    usage: int = 0
    limit: int = 0  # the host's memory when unlimited
    stats: dict[str, int] = attrs.Factory(dict)  # memory.stat, under the kernel's names
    max_usage: int | None = None  # v1; v2 where memory.peak exists
    failcnt: int | None = None  # v1 only


@attrs.frozen
class PidsStats:
    current: int = 0
    limit: int | None = None  # None: no limit


@attrs.frozen
class BlkioEntry:
    major: int
    minor: int
    op: str  # "Read", "Write", … (v1) or "read", "write" (v2), as Docker shows them
    value: int


@attrs.frozen
class BlkioStats:
    service_bytes: tuple[BlkioEntry, ...] | None = None
    serviced: tuple[BlkioEntry, ...] | None = None


@attrs.frozen
class CgroupStats:
    cpu: CpuStats = attrs.Factory(CpuStats)
    blkio: BlkioStats = attrs.Factory(BlkioStats)
    memory: MemoryStats | None = None  # None: no memory hierarchy (v1)
    pids: PidsStats | None = None  # None: no pids hierarchy (v1)
