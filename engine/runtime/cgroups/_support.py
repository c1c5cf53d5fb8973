"""Which optional knobs this host's cgroups offer (dockerd's sysinfo): checked at create so
the API answers with dockerd's warnings and discards what cannot be applied."""

import functools
import os

import attrs

from engine.errors import InvalidParameter

from ._detect import Layout, layout


@attrs.frozen
class Support:
    memory_swappiness: bool = False
    oom_kill_disable: bool = False
    blkio_weight: bool = False
    blkio_weight_device: bool = False
    blkio_read_bps: bool = False
    blkio_write_bps: bool = False
    blkio_read_iops: bool = False
    blkio_write_iops: bool = False
    cpu_realtime: bool = False  # real-time group scheduling (v1 cpu.rt_runtime_us: CONFIG_RT_GROUP_SCHED)
    cpus: str = ""  # the CPUs and memory nodes containers may use ("0-1"): the root cpuset's
    mems: str = ""


def detect_support(lay: Layout) -> Support:
    if lay.mode == "v2":
        # v2 has no swappiness nor OOM-killer switch; io.max / io.weight come with "io".
        root = lay.hierarchies[0].mountpoint
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                io = "io" in f.read().split()
        except OSError:
            io = False
        return Support(blkio_weight=io, blkio_weight_device=io, blkio_read_bps=io, blkio_write_bps=io,
                       blkio_read_iops=io, blkio_write_iops=io,
                       cpus=_read(root, "cpuset.cpus.effective") or _read("/sys/devices/system/cpu", "online"),
                       mems=_read(root, "cpuset.mems.effective") or _read("/sys/devices/system/node", "online"))

    cpuset = lay.by_controller("cpuset")

    def has(controller: str, name: str) -> bool:
        h = lay.by_controller(controller)
        return h is not None and os.path.exists(os.path.join(h.mountpoint, name))

    return Support(
        memory_swappiness=has("memory", "memory.swappiness"),
        oom_kill_disable=has("memory", "memory.oom_control"),
        blkio_weight=has("blkio", "blkio.weight") or has("blkio", "blkio.bfq.weight"),
        blkio_weight_device=has("blkio", "blkio.weight_device") or has("blkio", "blkio.bfq.weight_device"),
        blkio_read_bps=has("blkio", "blkio.throttle.read_bps_device"),
        blkio_write_bps=has("blkio", "blkio.throttle.write_bps_device"),
        blkio_read_iops=has("blkio", "blkio.throttle.read_iops_device"),
        blkio_write_iops=has("blkio", "blkio.throttle.write_iops_device"),
        cpu_realtime=has("cpu", "cpu.rt_runtime_us"),
        cpus=_read(cpuset.mountpoint, "cpuset.cpus") if cpuset else _read("/sys/devices/system/cpu", "online"),
        mems=_read(cpuset.mountpoint, "cpuset.mems") if cpuset else _read("/sys/devices/system/node", "online"),
    )


def _read(directory: str, name: str) -> str:
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()
    except OSError:
        return ""


def parse_cpu_list(text: str) -> set[int]:
    """A cpuset list ("0-2,4") → its numbers; ValueError when it is not one."""
    out: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(text)
        out.update(range(int(first), int(last or first) + 1))
    return out


def check_cpusets(cpus: str, mems: str, host: Support | None = None) -> None:
    """--cpuset-cpus / --cpuset-mems against what this host has, with dockerd's messages
    (the kernel's ERANGE at start said less)."""
    host = host or support()
    for value, available, what, unavailable in (
        (cpus, host.cpus, "cpuset cpus", "Requested CPUs are not available"),
        (mems, host.mems, "cpuset mems", "Requested memory nodes are not available"),
    ):
        if not value:
            continue
        try:
            wanted = parse_cpu_list(value)
        except ValueError:
            raise InvalidParameter(f"Invalid value {value} for {what}") from None
        if available and not wanted <= parse_cpu_list(available):
            raise InvalidParameter(f"{unavailable} - requested {value}, available: {available}")


@functools.cache
def support() -> Support:
    """This host's answer, detected once per process."""
    return detect_support(layout())
