"""Resource limits as the API gives them (Docker semantics), independent of v1/v2."""

import attrs

from engine.errors import InvalidParameter

CFS_PERIOD_DEFAULT = 100_000  # µs, as Docker
MIN_MEMORY = 6 * 1024 * 1024  # Docker: "Minimum memory limit allowed is 6MB"

BLKIO_WEIGHT_UNSUPPORTED_WARNING = (
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
)
SWAPPINESS_UNSUPPORTED_WARNING = (
    "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. "
    "Memory swappiness discarded."
)
OOM_KILL_DISABLE_UNSUPPORTED_WARNING = "Your kernel does not support OomKillDisable. OomKillDisable discarded."
OOM_KILL_DISABLE_NO_LIMIT_WARNING = (
    "OOM killer is disabled for the container, but no memory limit is set, this can result in "
    "the system running out of resources."
)
#: Support/Resources field → dockerd's warning when the kernel/cgroup lacks it (value discarded).
BLKIO_DEVICE_UNSUPPORTED_WARNINGS = {
    "blkio_weight_device": "Your kernel does not support Block I/O weight_device or the cgroup is not "
                         "mounted. Weight-device discarded.",
    "blkio_read_bps": "Your kernel does not support BPS Block I/O read limit or the cgroup is not "
                          "mounted. Block I/O BPS read limit discarded.",
    "blkio_write_bps": "Your kernel does not support BPS Block I/O write limit or the cgroup is not "
                           "mounted. Block I/O BPS write limit discarded.",
    "blkio_read_iops": "Your kernel does not support IOPS Block read limit or the cgroup is not "
                           "mounted. Block I/O IOPS read limit discarded.",
    "blkio_write_iops": "Your kernel does not support IOPS Block write limit or the cgroup is not "
                            "mounted. Block I/O IOPS write limit discarded.",
}
SWAP_UNSUPPORTED_WARNING = (
    "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
    "Memory limited without swap."
)



def check_memory_reservation(memory: int, reservation: int, *, minimum: bool = True) -> None:
    """dockerd's rules for a memory reservation; `minimum`: also its 6 MB floor (a create's or
    an update's request: a run of an older record that has less still starts)."""
    if minimum and reservation and reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory and reservation > memory:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation limit, see usage")


def check_cfs(period: int, quota: int) -> None:
    """dockerd's rules for a CFS period and quota (µs; quota -1: none)."""
    if period and not (1000 <= period <= 1_000_000):
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if quota and quota != -1 and quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")


@attrs.define(frozen=True)
class Resources:
    """Limits for one container. Zero/None means "not set" (unlimited / inherited).

    memory_swap follows Docker: it is memory+swap; 0 = unset (→ 2×memory when memory is
    set), -1 = unlimited swap."""

    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpu_realtime_period: int = 0  # µs; real-time group scheduling (v1 only)
    cpu_realtime_runtime: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    blkio_weight: int = 0  # 10..1000; discarded with a warning where no weight file exists
    # --privileged: every device allowed (v1 devices cgroup "a *:* rwm"), not Docker's short list
    allow_all_devices: bool = False
    # Allowed on top of Docker's defaults: --device nodes and --device-cgroup-rule (DeviceRule).
    device_rules: tuple = attrs.field(default=(), converter=tuple)
    memory_swappiness: int | None = None  # 0..100 (v1 memory.swappiness); None/-1 = unset
    oom_kill_disable: bool = False  # v1 memory.oom_control
    # Per-device (major, minor, value) throttles/weights, device paths resolved at start.
    blkio_weight_device: tuple = attrs.field(default=(), converter=tuple)
    blkio_read_bps: tuple = attrs.field(default=(), converter=tuple)
    blkio_write_bps: tuple = attrs.field(default=(), converter=tuple)
    blkio_read_iops: tuple = attrs.field(default=(), converter=tuple)
    blkio_write_iops: tuple = attrs.field(default=(), converter=tuple)

    def validate(self) -> None:
        if self.memory < 0 or (0 < self.memory < MIN_MEMORY):
            raise InvalidParameter("Minimum memory limit allowed is 6MB")
        if self.memory_swap not in (0, -1) and self.memory_swap < 0:
            raise InvalidParameter("Invalid value for memory swap")
        if self.memory and self.memory_swap > 0 and self.memory_swap < self.memory:
            raise InvalidParameter(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        if self.memory_swap > 0 and not self.memory:
            raise InvalidParameter(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
            )
        check_memory_reservation(self.memory, self.memory_reservation, minimum=False)
        if self.nano_cpus and (self.cpu_quota or self.cpu_period):
            raise InvalidParameter(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set"
            )
        if self.nano_cpus < 0:
            raise InvalidParameter("Range of CPUs is from 0.01 to the number of CPUs available")
        check_cfs(self.cpu_period, self.cpu_quota)
        if self.cpu_shares < 0:
            raise InvalidParameter("invalid CPU shares")
        rt_period, rt_runtime = self.cpu_realtime_period, self.cpu_realtime_runtime
        if rt_period and rt_runtime and rt_runtime > rt_period:
            raise InvalidParameter("cpu real-time runtime cannot be higher than cpu real-time period")
        if self.blkio_weight and not (10 <= self.blkio_weight <= 1000):
            raise InvalidParameter("Range of blkio weight is from 10 to 1000")
        if self.memory_swappiness is not None and not (-1 <= self.memory_swappiness <= 100):
            raise InvalidParameter(
                f"Invalid value: {self.memory_swappiness}, valid memory swappiness range is 0-100")

    def swappiness(self) -> int | None:
        """The value to write, None when unset (-1 is the API's "unset")."""
        return None if self.memory_swappiness in (None, -1) else self.memory_swappiness

    def throttles(self) -> tuple[tuple[str, tuple], ...]:
        """(v1 file suffix / v2 io.max key, entries) for each throttle kind."""
        return (("read_bps", self.blkio_read_bps), ("write_bps", self.blkio_write_bps),
                ("read_iops", self.blkio_read_iops), ("write_iops", self.blkio_write_iops))

    # ---- derived values (shared by v1 and v2) ----

    def memsw_limit(self) -> int | None:
        """memory+swap total to write, -1 for unlimited, None for "leave alone"."""
        if not self.memory:
            return -1 if self.memory_swap == -1 else None
        if self.memory_swap == -1:
            return -1
        if self.memory_swap > 0:
            return self.memory_swap
        return 2 * self.memory

    def cfs(self) -> tuple[int, int] | None:
        """(quota µs, period µs) or None. nano_cpus → quota over a 100 ms period."""
        if self.nano_cpus:
            period = CFS_PERIOD_DEFAULT
            return max(1000, self.nano_cpus * period // 1_000_000_000), period
        if self.cpu_quota or self.cpu_period:
            return self.cpu_quota or -1, self.cpu_period or CFS_PERIOD_DEFAULT
        return None

    def pids_max(self) -> int | None:
        """Positive limit, -1 for "explicitly unlimited" (0/-1 from the API), None = unset."""
        if self.pids_limit is None:
            return None
        return self.pids_limit if self.pids_limit > 0 else -1


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] → cpu.weight [1, 10000], the conversion runc uses."""
    if shares <= 0:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142
