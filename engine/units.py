"""Human-readable units as Docker prints and reads them (go-units), shared by the daemon and the CLI."""

import re


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "About a minute", "3 hours", …"""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_RAM_RE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_RAM_MULT = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "64m" -> 67108864, "1g", "512k", "100" (bytes)."""
    m = _RAM_RE.match(text)
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    try:
        num = float(m.group(1))
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    unit = (m.group(2) or "").lower()
    return int(num * _RAM_MULT.get(unit, 1))


def parse_ulimit(text: str) -> tuple[str, int, int]:
    """go-units ParseUlimit's "name=soft[:hard]" (one number: soft and hard) → (name, soft,
    hard); ValueError when a limit is not a number. The name is the caller's to check."""
    name, sep, limits = text.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        soft_n = int(soft)
        return name, soft_n, int(hard) if hard else soft_n
    except ValueError:
        raise ValueError(f"invalid ulimit {text!r}") from None
