"""The event bus: every state change in the engine is published here as a Docker-shaped event.

    bus = EventBus()
    bus.publish("container", "start", cid, {"name": "web", "image": "busybox"})   # sync, never blocks

    async with bus.subscribe(since=..., until=..., filters={"event": ["start"]}) as events:
        async for ev in events:
            if ev is LAGGED:          # we were too slow and have been dropped
                break
            ...

Design (as dockerd's daemon/events): a ring of the last N events serves `since`/`until`
replays; each subscriber has a bounded channel. `publish` is synchronous and uses
`send_nowait`; a subscriber whose buffer is full is dropped on the spot: its channel is closed,
it drains what it had, then receives the `LAGGED` marker and the iteration ends. A slow client
can therefore never slow the engine down.

Filters follow dockerd's daemon/events/filter.go (type, event, container, image, label,
volume, network, daemon, plugin, node, service, secret, config, scope).
Times (`since`/`until`) are Unix seconds (`"1700000000.123456789"`, floats ok), RFC 3339, or a
duration relative to now (`"10m"`, `"1h30m"`, `"-5s"` is also "5s ago").
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

import attrs
import trio

from engine.errors import InvalidParameter

__all__ = [
    "EventBus",
    "EventBusStatistics",
    "EventFilter",
    "LAGGED",
    "Subscription",
    "parse_filters",
    "parse_time",
]

DEFAULT_HISTORY = 1024
DEFAULT_BUFFER = 256


class _Lagged:
    """The final item a dropped (too slow) subscriber receives."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LAGGED"


LAGGED = _Lagged()


# --------------------------------------------------------------------------- time parsing

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}


def _parse_duration_ns(value: str) -> int | None:
    """Go's time.ParseDuration subset: "10m", "1h30m", "1.5s". None if not a duration."""
    pos = 0
    total = 0.0
    for m in _DURATION_RE.finditer(value):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(value) or pos == 0:
        return None
    return int(total)


def parse_time(value: str | float | int | None, now_ns: int | None = None) -> int | None:
    """A `since`/`until` value → Unix nanoseconds (None for None/"").

    Accepts Unix seconds ("1700000000", "1700000000.5", "1700000000.000000001"), RFC 3339
    ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123+02:00", "2024-01-02"), and durations
    relative to now ("10m" = ten minutes ago, like the docker CLI does client-side).
    Raises InvalidParameter on anything else.
    """
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameter(f"invalid timestamp: {value!r}")
        if isinstance(value, float):
            return parse_time(format(value, ".9f"), now_ns)
        return value * 1_000_000_000
    value = value.strip()
    if not value:
        return None
    if now_ns is None:
        now_ns = time.time_ns()
    # Unix seconds, optionally with a fraction (exact integer arithmetic for the nanoseconds).
    m = re.fullmatch(r"(-?\d+)(?:\.(\d{0,9})\d*)?", value)
    if m:
        secs = int(m.group(1))
        frac = (m.group(2) or "").ljust(9, "0")
        nanos = int(frac) if frac else 0
        return secs * 1_000_000_000 + (nanos if secs >= 0 else -nanos)
    dur = _parse_duration_ns(value.lstrip("-"))
    if dur is not None:
        return now_ns - dur
    try:
        text = value.replace("Z", "+00:00").replace("z", "+00:00")
        # Python < 3.11 fromisoformat is strict on fractions; 3.11 copes with up to 6 digits.
        frac_ns = 0
        fm = re.search(r"\.(\d+)", text)
        if fm:
            digits = fm.group(1)
            frac_ns = int(digits[:9].ljust(9, "0"))
            text = text[: fm.start()] + text[fm.end() :]
        dt = datetime.datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return int(dt.timestamp()) * 1_000_000_000 + frac_ns
    except ValueError:
        pass
    raise InvalidParameter(f"invalid timestamp {value!r}: want Unix seconds, RFC 3339 or a duration")


# --------------------------------------------------------------------------- filters


def parse_filters(raw: str | Mapping | None) -> dict[str, list[str]]:
    """Docker's `filters` query value → {key: [values]}.

    Both the current map form `{"type": {"container": true}}` and the legacy list form
    `{"type": ["container"]}` are accepted (as dockerd's filters.FromJSON does).
    """
    import json

    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as e:
            raise InvalidParameter(f"invalid filters: {e}") from None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameter("invalid filters: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, val in raw.items():
        if isinstance(val, Mapping):
            values = [str(k) for k, on in val.items() if on]
        elif isinstance(val, (list, tuple)):
            values = [str(v) for v in val]
        elif isinstance(val, str):
            values = [val]
        else:
            raise InvalidParameter(f"invalid filters: bad value for {key!r}")
        out[str(key)] = values
    return out


def _strip_tag(ref: str) -> str:
    """"busybox:latest" → "busybox"; keeps registry ports and digests apart."""
    if "@" in ref:
        return ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon]
    return ref


@attrs.frozen
class EventFilter:
    """Docker's event filter semantics (daemon/events/filter.go)."""

    filters: Mapping[str, list[str]] = attrs.field(factory=dict)

    def _exact(self, key: str, value: str | None) -> bool:
        vals = self.filters.get(key)
        if not vals:
            return True
        return value is not None and value in vals

    def _fuzzy(self, key: str, value: str | None) -> bool:
        vals = self.filters.get(key)
        if not vals:
            return True
        if not value:
            return False
        return any(value == v or value.startswith(v) for v in vals)

    def _fuzzy_name(self, ev: Mapping, key: str) -> bool:
        actor = ev.get("Actor") or {}
        return self._fuzzy(key, actor.get("ID")) or self._fuzzy(
            key, (actor.get("Attributes") or {}).get("name")
        )

    def _match_event(self, ev: Mapping) -> bool:
        vals = self.filters.get("event")
        if not vals:
            return True
        action = ev.get("Action", "")
        # dockerd #25798: "health_status", "exec_create", "exec_start" match with their suffix.
        if any(v in ("health_status", "exec_create", "exec_start") for v in vals):
            return self._fuzzy("event", action)
        return action in vals

    def _match_image(self, ev: Mapping) -> bool:
        if not self.filters.get("image"):
            return True
        actor = ev.get("Actor") or {}
        attrs_ = actor.get("Attributes") or {}
        ident = actor.get("ID") or ""
        name = attrs_.get("name" if ev.get("Type") == "image" else "image") or ""
        return any(
            self._exact("image", v) for v in (ident, name, _strip_tag(ident), _strip_tag(name)) if v
        )

    def _match_labels(self, ev: Mapping) -> bool:
        vals = self.filters.get("label")
        if not vals:
            return True
        attributes = (ev.get("Actor") or {}).get("Attributes") or {}
        if not attributes:
            return False
        for v in vals:
            key, eq, want = v.partition("=")
            if key not in attributes:
                return False
            if eq and attributes[key] != want:
                return False
        return True

    def include(self, ev: Mapping) -> bool:
        if not self.filters:
            return True
        if not self._match_event(ev) or not self._exact("type", ev.get("Type")):
            return False
        if self.filters.get("scope") and not self._exact("scope", ev.get("scope")):
            return False
        if self.filters.get("daemon"):
            if ev.get("Type") != "daemon" or not self._fuzzy_name(ev, "daemon"):
                return False
        for key in ("container", "plugin", "volume", "network", "node", "service", "secret", "config"):
            if not self._fuzzy_name(ev, key):
                return False
        return self._match_image(ev) and self._match_labels(ev)


# --------------------------------------------------------------------------- the bus


@attrs.frozen
class EventBusStatistics:
    subscribers: int
    history: int
    history_max: int
    published: int
    dropped_subscribers: int


class _Subscriber:
    __slots__ = ("send", "receive", "filter", "since_ns", "until_ns", "lagged")

    def __init__(self, send, receive, flt: EventFilter, since_ns, until_ns):
        self.send = send
        self.receive = receive
        self.filter = flt
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.lagged = False

    def wants(self, ev: Mapping) -> bool:
        t = ev["timeNano"]
        if self.since_ns is not None and t < self.since_ns:
            return False
        if self.until_ns is not None and t > self.until_ns:
            return False
        return self.filter.include(ev)


class Subscription:
    """What `EventBus.subscribe` yields: an async iterator of event dicts, ending with
    `LAGGED` if this subscriber was dropped for being too slow. Private constructor."""

    def __init__(self, bus: EventBus, sub: _Subscriber, replay: list[dict], deadline: float):
        self._bus = bus
        self._sub = sub
        self._replay = collections.deque(replay)
        self._deadline = deadline  # trio clock; inf = follow forever
        self._done = False

    @property
    def lagged(self) -> bool:
        return self._sub.lagged

    def close(self) -> None:
        """Unsubscribe (sync, idempotent)."""
        self._done = True
        self._replay.clear()
        self._bus._unsubscribe(self._sub)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self):
        if self._replay:
            return self._replay.popleft()
        if self._done:
            raise StopAsyncIteration
        with trio.move_on_at(self._deadline):
            try:
                return await self._sub.receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                pass
        self._done = True
        if self._sub.lagged:
            return LAGGED
        raise StopAsyncIteration


class EventBus:
    """Fan-out of engine events with bounded per-subscriber buffers and a ring history."""

    def __init__(
        self,
        history: int = DEFAULT_HISTORY,
        buffer: int = DEFAULT_BUFFER,
        clock_ns: Callable[[], int] = time.time_ns,
    ):
        self._history: collections.deque[dict] = collections.deque(maxlen=history)
        self._buffer = buffer
        self._clock_ns = clock_ns
        self._subscribers: set[_Subscriber] = set()
        self._published = 0
        self._dropped = 0

    # -- publishing (sync; never awaits, never blocks)

    def publish(
        self,
        type: str,
        action: str,
        actor_id: str,
        attributes: Mapping[str, str] | None = None,
        scope: str = "local",
    ) -> dict:
        now = self._clock_ns()
        ev: dict = {}
        if type in ("container", "image"):
            # Deprecated top-level fields dockerd still fills for containers and images.
            ev["status"] = action
            ev["id"] = actor_id
            if type == "container":
                ev["from"] = (attributes or {}).get("image", "")
        ev["Type"] = type
        ev["Action"] = action
        ev["Actor"] = {"ID": actor_id, "Attributes": {k: str(v) for k, v in (attributes or {}).items()}}
        ev["scope"] = scope
        ev["time"] = now // 1_000_000_000
        ev["timeNano"] = now
        self._history.append(ev)
        self._published += 1
        for sub in list(self._subscribers):
            if not sub.wants(ev):
                continue
            try:
                sub.send.send_nowait(ev)
            except trio.WouldBlock:
                self._drop(sub)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(sub)
        return ev

    def _drop(self, sub: _Subscriber) -> None:
        sub.lagged = True
        self._subscribers.discard(sub)
        self._dropped += 1
        sub.send.close()

    # -- subscribing

    def history(self) -> list[dict]:
        return list(self._history)

    def open_subscription(
        self,
        since: str | float | int | None = None,
        until: str | float | int | None = None,
        filters: Mapping[str, Iterable[str]] | str | None = None,
        *,
        buffer: int | None = None,
    ) -> Subscription:
        """Register now (synchronously) and return the Subscription; the caller must
        `close()` it. Prefer `subscribe()`; this exists for handlers that must be subscribed
        before they answer (dockerd subscribes before writing the /events headers)."""
        now_ns = self._clock_ns()
        since_ns = parse_time(since, now_ns)
        until_ns = parse_time(until, now_ns)
        if isinstance(filters, str) or filters is None:
            flt_map = parse_filters(filters)
        else:
            flt_map = {k: [v] if isinstance(v, str) else list(v) for k, v in filters.items()}
        flt = EventFilter(flt_map)

        send, receive = trio.open_memory_channel[dict](buffer or self._buffer)
        sub = _Subscriber(send, receive, flt, since_ns, until_ns)
        replay: list[dict] = []
        # Snapshot history and register in one synchronous step: no gap, no duplicate.
        # History is replayed only when since or until is given (as dockerd).
        if since_ns is not None or until_ns is not None:
            replay = [ev for ev in self._history if sub.wants(ev)]
        if until_ns is not None and until_ns <= now_ns:
            deadline = -math.inf  # only past events
            send.close()
        else:
            self._subscribers.add(sub)
            deadline = (
                math.inf
                if until_ns is None
                else trio.current_time() + (until_ns - now_ns) / 1_000_000_000
            )
        return Subscription(self, sub, replay, deadline)

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        since: str | float | int | None = None,
        until: str | float | int | None = None,
        filters: Mapping[str, Iterable[str]] | str | None = None,
        *,
        buffer: int | None = None,
    ) -> AsyncIterator[Subscription]:
        """Replay matching history (only when `since` or `until` is given, as dockerd), then
        live events until `until` (if it is in the future) or forever. Iterating yields event
        dicts, and `LAGGED` last if this subscriber was dropped for being too slow."""
        subscription = self.open_subscription(since, until, filters, buffer=buffer)
        try:
            yield subscription
        finally:
            subscription.close()

    def _unsubscribe(self, sub: _Subscriber) -> None:
        self._subscribers.discard(sub)
        sub.send.close()
        sub.receive.close()

    def statistics(self) -> EventBusStatistics:
        return EventBusStatistics(
            subscribers=len(self._subscribers),
            history=len(self._history),
            history_max=self._history.maxlen or 0,
            published=self._published,
            dropped_subscribers=self._dropped,
        )
