"""Docker's time values, shared by the daemon's packages: Go's RFC3339Nano (the json-file
log, inspect's timestamps) and the since/until forms of the API's queries (Unix seconds,
RFC 3339, Go durations)."""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime

from engine import errors

__all__ = ["format_rfc3339nano", "parse_rfc3339_ns", "parse_since"]

_NS = 1_000_000_000


def format_rfc3339nano(ns: int, *, fixed: bool = False) -> str:
    """UTC RFC3339 with nanoseconds. fixed=False trims trailing zeros (Go's RFC3339Nano, used
    in the log file); fixed=True always writes 9 digits (what `docker logs -t` prints)."""
    sec, frac = divmod(ns, _NS)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if fixed:
        return f"{base}.{frac:09d}Z"
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9})\d*)?)?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_rfc3339_ns(value: str, *, local_if_no_zone: bool = False) -> int:
    """RFC3339 (any fraction length) → ns since the epoch. Without a zone the value is UTC,
    or local time when local_if_no_zone (what Docker's CLI does for `--since 2024-01-01`)."""
    m = _RFC3339_RE.match(value.strip())
    if not m:
        raise ValueError(f"not an RFC3339 time: {value!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    datetime(*fields)  # validates ranges (month 13, Feb 30…)
    frac_ns = int((frac or "").ljust(9, "0") or 0)
    if zone is None and local_if_no_zone:
        secs = int(time.mktime((*fields, 0, 0, -1)))
    else:
        secs = calendar.timegm((*fields, 0, 0, 0))
        if zone and zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            hh, mm = int(zone[1:3]), int(zone[-2:])
            secs -= sign * (hh * 3600 + mm * 60)
    return secs * _NS + frac_ns


_DURATION_UNITS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
    "s": _NS, "m": 60 * _NS, "h": 3600 * _NS,
}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIX_RE = re.compile(r"^-?\d+(?:\.(\d+))?$")


def _parse_go_duration(value: str) -> int | None:
    """Go's time.ParseDuration ("1h30m", "1.5s", "-10m") → ns, or None if not a duration."""
    s = value
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s:
        return None
    total = 0
    pos = 0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            return None
        number, unit = m.groups()
        whole, _, frac = number.partition(".")
        scale = _DURATION_UNITS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // (10 ** len(frac))
        pos = m.end()
    if pos != len(s) or pos == 0:
        return None
    return sign * total


def parse_since(value: str | int | float | None, *, now_ns: int | None = None) -> int:
    """Docker's since/until forms → ns since the epoch.

    - Unix seconds with an optional fraction ("1700000000", "1700000000.123456789"): what the
      API receives; the fraction is right-padded to nanoseconds like Docker's ParseTimestamps.
    - RFC3339 / RFC3339Nano ("2024-01-01T00:00:00Z", "2024-01-01T10:00:00.5+02:00"), and the
      short forms the CLI accepts ("2024-01-01", "2024-01-01T10:00"); no zone = local time.
    - A Go duration relative to now ("10m", "1h30m", "1.5h"), meaning now minus it.
    "" and "0" mean 0 (no bound). Anything else → InvalidParameter.
    """
    if value is None:
        return 0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(round(value * _NS))
    text = str(value).strip()
    if text in ("", "0"):
        return 0
    m = _UNIX_RE.match(text)
    if m:
        whole, _, frac = text.partition(".")
        neg = whole.startswith("-")
        secs = int(whole)
        frac_ns = int(frac[:9].ljust(9, "0")) if frac else 0
        return secs * _NS - frac_ns if neg else secs * _NS + frac_ns
    duration = _parse_go_duration(text)
    if duration is not None:
        return (time.time_ns() if now_ns is None else now_ns) - duration
    try:
        return parse_rfc3339_ns(text, local_if_no_zone=True)
    except ValueError:
        pass
    raise errors.InvalidParameter(
        f'failed to parse value as time or duration: "{text}"'
    )
