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

The container record keeps Docker's Config shapes (see model.Container), so the probe config
is read from its `Healthcheck` dict; durations there are nanoseconds.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable

import attrs
import trio

from engine import errors

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
NO_HEALTHCHECK = "none"  # what `ps --filter health=` calls a container without one
STATUSES = (STARTING, HEALTHY, UNHEALTHY, NO_HEALTHCHECK)

SECOND = 1_000_000_000
DEFAULT_INTERVAL_NS = 30 * SECOND
DEFAULT_TIMEOUT_NS = 30 * SECOND
DEFAULT_START_PERIOD_NS = 0
DEFAULT_RETRIES = 3
MINIMUM_DURATION_NS = 1_000_000  # 1ms, dockerd's containertypes.MinimumDuration
MAX_OUTPUT = 4096  # bytes of probe output kept per result
MAX_LOG = 5  # results kept
DEFAULT_SHELL = ("/bin/sh", "-c")

log = logging.getLogger(__name__)


@attrs.frozen
class HealthConfig:
    """A container's healthcheck. Zero durations/retries mean "the default"."""

    test: tuple[str, ...] = ()
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    retries: int = 0

    @classmethod
    def from_record(cls, healthcheck: dict | None) -> "HealthConfig | None":
        """The record's (Docker-shaped, validated at create) Config.Healthcheck."""
        if not healthcheck:
            return None
        return cls(
            test=tuple(healthcheck.get("Test") or ()),
            interval_ns=int(healthcheck.get("Interval") or 0),
            timeout_ns=int(healthcheck.get("Timeout") or 0),
            start_period_ns=int(healthcheck.get("StartPeriod") or 0),
            retries=int(healthcheck.get("Retries") or 0),
        )

    @property
    def enabled(self) -> bool:
        """Only CMD and CMD-SHELL probe; NONE (or nothing, or an unknown kind) disables."""
        return bool(self.test) and self.test[0] in ("CMD", "CMD-SHELL")

    @property
    def interval(self) -> float:
        return (self.interval_ns or DEFAULT_INTERVAL_NS) / SECOND

    @property
    def timeout_ns_effective(self) -> int:
        return self.timeout_ns or DEFAULT_TIMEOUT_NS

    @property
    def start_period(self) -> float:
        return (self.start_period_ns or DEFAULT_START_PERIOD_NS) / SECOND

    @property
    def retries_effective(self) -> int:
        return self.retries if self.retries > 0 else DEFAULT_RETRIES

    def command(self, shell: list[str] | None = None) -> list[str]:
        """The probe's argv: CMD runs as given, CMD-SHELL through the container's shell."""
        args = list(self.test[1:])
        if self.test[0] == "CMD-SHELL":
            args = list(shell or DEFAULT_SHELL) + args
        return args


def merge_healthcheck(requested: dict | None, image: dict | None) -> dict | None:
    """dockerd's merge of a create request's Healthcheck over the image's: no request → the
    image's; otherwise each empty field (Test, durations, Retries) inherits the image's."""
    if requested is None:
        return dict(image) if image else None
    if not isinstance(requested, dict):
        raise errors.InvalidParameter("Healthcheck must be a JSON object")
    merged = dict(requested)
    if image:
        for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
            if not merged.get(key):
                if image.get(key):
                    merged[key] = image[key]
    return merged


def validate_healthcheck(healthcheck: dict | None) -> None:
    """dockerd's validateHealthCheck (messages included): 400 on bad durations/retries."""
    if not healthcheck:
        return
    test = healthcheck.get("Test")
    if test is not None and (not isinstance(test, list) or not all(isinstance(t, str) for t in test)):
        raise errors.InvalidParameter("Healthcheck.Test must be a list of strings")
    for key in ("Interval", "Timeout", "StartPeriod"):
        value = healthcheck.get(key) or 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.InvalidParameter(f"invalid value for Healthcheck.{key}: {value!r}")
        if value != 0 and value < MINIMUM_DURATION_NS:
            raise errors.InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    retries = healthcheck.get("Retries") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise errors.InvalidParameter(f"invalid value for Healthcheck.Retries: {retries!r}")
    if retries < 0:
        raise errors.InvalidParameter("Retries in Healthcheck cannot be negative")


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
            instance = execs.create(container.id, {
                "Cmd": config.command(container.config.get("Shell")),
                "AttachStdout": True, "AttachStderr": True, "Tty": False, "Privileged": False,
            })
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
    config = HealthConfig.from_record(container.config.get("Healthcheck"))
    if container.state.health is not None and config is not None and config.enabled:
        container.state.health.monitor_stopped()


def watch_run(nursery: trio.Nursery, manager, container, process) -> None:
    """Start the health monitor of the run `process` of `container` in the run's nursery
    (a no-op without an enabled healthcheck). The monitor stops once the process exits."""
    config = HealthConfig.from_record(container.config.get("Healthcheck"))
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

