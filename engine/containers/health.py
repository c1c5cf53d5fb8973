"""Healthchecks, as dockerd runs them (daemon/health.go): a probe command exec'd in the
container every interval; its results make the container "starting", "healthy" or
"unhealthy".

Task tree: the monitor of a run lives in that run's supervisor nursery (see
ContainerManager._run_until_exit), so it stops with the container and a daemon shutdown
cancels it; a probe still running is then killed and reaped by the exec pump (pumps.drive).

    run nursery ── health monitor ──┬── exit watch (process.wait → stop)
                                    └── while not paused: sleep(interval) → probe (exec)

State machine (Health.status), dockerd's:
    start of a run                      → starting, failing streak 0 (the log is kept)
    probe exit 0                        → healthy, streak 0
    probe failure (exit ≠ 0, timeout,   → streak + 1 (not while "starting" inside the start
      exec error: exit code -1)           period); streak ≥ retries → unhealthy
    monitor stopped (pause, exit)       → unhealthy (dockerd does so "for compatibility")
A `health_status: <status>` event is published when a probe changes the status.

The probe's config is the container's spec (ContainerConfig.healthcheck); durations are
nanoseconds.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable

import attrs
import trio

from engine import errors
from engine.containers.spec import (  # noqa: F401 (re-exported: the probe's config)
    DEFAULT_INTERVAL_NS, DEFAULT_RETRIES, DEFAULT_SHELL, DEFAULT_START_PERIOD_NS, DEFAULT_TIMEOUT_NS,
    MINIMUM_DURATION_NS, SECOND, ExecConfig, HealthConfig)

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
NO_HEALTHCHECK = "none"  # what `ps --filter health=` calls a container without one
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NO_HEALTHCHECK)

MAX_OUTPUT = 4096  # bytes of probe output kept per result
MAX_LOG = 5  # results kept

log = logging.getLogger(__name__)


@attrs.define
class ProbeResult:
    start_ns: int
    end_ns: int
    exit_code: int
    output: str


def _result(value) -> ProbeResult:
    return value if isinstance(value, ProbeResult) else ProbeResult(**value)


@attrs.define
class Health:
    """State.Health: persisted with the container record."""

    status: str = STARTING
    failing_streak: int = 0
    log: list[ProbeResult] = attrs.field(factory=list, converter=lambda v: [_result(r) for r in v or ()])

    def reset(self) -> None:
        """A new run starts: dockerd's initHealthMonitor."""
        self.status = STARTING
        self.failing_streak = 0

    def record(self, result: ProbeResult, config: HealthConfig, in_start_period: bool) -> bool:
        """Apply one probe's result (dockerd's handleProbeResult); True if the status changed."""
        before = self.status
        self.log = [*self.log, result][-MAX_LOG:]
        if result.exit_code == 0:
            self.failing_streak = 0
            self.status = HEALTHY
        elif not (self.status == STARTING and in_start_period):
            self.failing_streak += 1
            if self.failing_streak >= config.retries_effective:
                self.status = UNHEALTHY
        return self.status != before

    def monitor_stopped(self) -> None:
        self.status = UNHEALTHY


def health_from(value) -> Health | None:
    """attrs converter for State.health (records hold it as a dict)."""
    if value is None or isinstance(value, Health):
        return value
    return Health(**value)


class LimitedBuffer:
    """Probe output: the first MAX_OUTPUT bytes, "..." appended if more was written."""

    def __init__(self, limit: int = MAX_OUTPUT) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    async def write(self, _stream_id: int, data: bytes) -> None:
        keep = max(self.limit - len(self.data), 0)
        self.data += data[:keep]
        if keep < len(data):
            self.truncated = True

    def text(self) -> str:
        return self.data.decode("utf-8", "replace") + ("..." if self.truncated else "")


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(), as dockerd prints timeouts: 30s, 1.5s, 500ms, 1m30s."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)

    def frac(value: int, unit: int) -> str:
        whole, rest = divmod(value, unit)
        digits = f"{rest:0{len(str(unit)) - 1}d}".rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)

    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{frac(ns, 1000)}µs"
    if ns < SECOND:
        return f"{sign}{frac(ns, 1_000_000)}ms"
    hours, ns = divmod(ns, 3600 * SECOND)
    minutes, ns = divmod(ns, 60 * SECOND)
    seconds = frac(ns, SECOND) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


Probe = Callable[[HealthConfig], Awaitable[ProbeResult]]


async def probe_loop(config: HealthConfig, health: Health, probe: Probe,
                     on_change: Callable[[str], None], *, started_at: float) -> None:
    """Probe every interval (the first one interval after the start) until cancelled.
    `started_at` is the run's start on trio's clock (for the start period)."""
    while True:
        await trio.sleep(config.interval)
        probe_started = trio.current_time()
        result = await probe(config)
        in_start_period = probe_started - started_at < config.start_period
        if health.record(result, config, in_start_period):
            on_change(health.status)


async def monitor(config: HealthConfig, health: Health, probe: Probe, on_change: Callable[[str], None],
                  *, is_paused: Callable[[], bool], wait_changed: Callable[[], Awaitable[None]],
                  started_at: float) -> None:
    """Run `probe_loop` while the container is not paused; the status turns unhealthy each
    time probing stops (pause, or cancellation at the run's end), as dockerd's does."""
    try:
        while True:
            while is_paused():
                await wait_changed()
            async with trio.open_nursery() as nursery:

                async def until_paused() -> None:
                    while not is_paused():
                        await wait_changed()
                    # Unhealthy at once: a probe caught in the freeze is only reaped at unpause.
                    health.monitor_stopped()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_paused)
                nursery.start_soon(functools.partial(probe_loop, config, health, probe, on_change, started_at=started_at))
            health.monitor_stopped()
    finally:
        health.monitor_stopped()


# --- the engine side: probes as execs in the container ---------------------------------------
def exec_probe(execs, container) -> Probe:
    """A probe that execs the healthcheck command in `container`, as dockerd does (events
    exec_create / exec_start / exec_die included); the exec is forgotten once done."""

    async def probe(config: HealthConfig) -> ProbeResult:
        start_ns = time.time_ns()
        output = LimitedBuffer()
        timeout_ns = config.timeout_ns_effective
        try:
            instance = execs.create(container.id, ExecConfig(
                cmd=tuple(config.command(container.config.shell)), attach_stdout=True, attach_stderr=True))
        except errors.EngineError as exc:
            return ProbeResult(start_ns, time.time_ns(), -1, exc.message)
        try:
            with trio.move_on_after(timeout_ns / SECOND) as scope:
                code = await execs.start(instance.id, sink=output.write)
            if scope.cancelled_caught:
                text = output.text()
                message = f"Health check exceeded timeout ({go_duration(timeout_ns)})"
                return ProbeResult(start_ns, time.time_ns(), -1, f"{message}: {text}" if text else message)
            return ProbeResult(start_ns, time.time_ns(), code, output.text())
        except errors.EngineError as exc:
            return ProbeResult(start_ns, time.time_ns(), -1, exc.message)
        except OSError as exc:
            # the container died while the probe was being spawned (stop/kill racing a
            # probe): a failed probe, never an error that takes the supervisor down
            return ProbeResult(start_ns, time.time_ns(), -1, str(exc))
        finally:
            execs.forget(instance.id)

    return probe


def paused(container) -> None:
    """The container was just frozen: its monitor stops, and dockerd reports it unhealthy
    right away (the monitor task notices the pause a moment later)."""
    config = container.config.healthcheck
    if container.state.health is not None and config is not None and config.enabled:
        container.state.health.monitor_stopped()


def watch_run(nursery: trio.Nursery, manager, container, process) -> None:
    """Start the health monitor of the run `process` of `container` in the run's nursery
    (a no-op without an enabled healthcheck). The monitor stops once the process exits."""
    config = container.config.healthcheck
    if config is None or not config.enabled:
        return
    state = container.state
    if state.health is None:
        state.health = Health()
    health = state.health
    health.reset()
    sup = manager.supervisor(container)
    from engine.containers.model import Status

    def on_change(status: str) -> None:
        container.save()
        manager.publish(container, "health_status: " + status)

    async def wait_changed() -> None:
        await sup.changed.wait()

    async def run() -> None:
        try:
            await watch()
        except Exception:  # a probe must never take the container's supervisor down
            log.exception("health monitor of container %s failed", container.id)

    async def watch() -> None:
        async with trio.open_nursery() as inner:

            async def until_exit() -> None:
                await process.wait()
                inner.cancel_scope.cancel()

            inner.start_soon(until_exit)
            inner.start_soon(functools.partial(
                monitor, config, health, exec_probe(manager.execs, container), on_change,
                is_paused=lambda: container.state.status is Status.PAUSED,
                wait_changed=wait_changed, started_at=trio.current_time()))

    nursery.start_soon(run)

