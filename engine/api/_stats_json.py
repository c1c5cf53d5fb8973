"""Docker's stats JSON (GET /containers/{id}/stats) from a typed StatsSample: what dockerd
shows for cgroup v1 and v2 (a counter the host does not have is left out or null as there)."""

from __future__ import annotations

from engine.containers.model import rfc3339_ns

_BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
               "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
               "io_time_recursive", "sectors_recursive")

# dockerd's precpu_stats before a previous sample exists: zero values, the optional fields left out
NO_CPU_STATS = {
    "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
}


def _memory(m) -> dict:
    if m is None:
        return {}
    out = {"usage": m.usage}
    if m.max_usage:  # Go's omitempty: v2 has neither, v1 shows them when not 0
        out["max_usage"] = m.max_usage
    if m.failcnt:
        out["failcnt"] = m.failcnt
    out["limit"] = m.limit
    out["stats"] = dict(m.stats)
    return out


def _cpu(c) -> dict:
    usage = {"total_usage": c.total_ns}
    if c.percpu_ns is not None:
        usage["percpu_usage"] = list(c.percpu_ns)
    usage.update(usage_in_kernelmode=c.kernel_ns, usage_in_usermode=c.user_ns)
    return {"cpu_usage": usage, "system_cpu_usage": c.system_ns, "online_cpus": c.online_cpus,
            "throttling_data": {"periods": c.periods, "throttled_periods": c.throttled_periods,
                                "throttled_time": c.throttled_ns}}


def _pids(p) -> dict:
    if p is None:
        return {}
    return {"current": p.current} if p.limit is None else {"current": p.current, "limit": p.limit}


def _blkio_entries(entries) -> list | None:
    if entries is None:
        return None
    return [{"major": e.major, "minor": e.minor, "op": e.op, "value": e.value} for e in entries]


def _blkio(b) -> dict:
    out: dict = dict.fromkeys(_BLKIO_KEYS)
    out["io_service_bytes_recursive"] = _blkio_entries(b.service_bytes)
    out["io_serviced_recursive"] = _blkio_entries(b.serviced)
    return out


def stats_shape(sample) -> dict:
    """One sample, without preread/precpu_stats (the route adds them from the previous one)."""
    out = {"read": rfc3339_ns(sample.read_ns), "name": "/" + sample.name, "id": sample.id}
    cgroup = sample.cgroup
    if cgroup is None:
        out.update({
            "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
            "memory_stats": {},
        })
        return out
    out.update(memory_stats=_memory(cgroup.memory), cpu_stats=_cpu(cgroup.cpu), pids_stats=_pids(cgroup.pids),
               blkio_stats=_blkio(cgroup.blkio))
    if sample.networks:  # dockerd leaves the block out when there is no interface but lo
        out["networks"] = {name: {"rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets, "rx_errors": n.rx_errors,
                                  "rx_dropped": n.rx_dropped, "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                                  "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped}
                           for name, n in sample.networks.items()}
    out["num_procs"] = 0
    out["storage_stats"] = {}
    return out
