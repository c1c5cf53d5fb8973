"""A list or prune request's `filters`, checked before anything is matched.

Each route names the keys it accepts and how their values are checked; an unknown key or a bad
value is refused with dockerd's message whether or not there is anything to match (checked
while matching, a request against an empty list went through).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from engine import errors
from engine.filters import PruneFilters
from engine.timefmt import parse_since

__all__ = ["Check", "boolean", "integer", "one_of", "timestamp", "checked", "truthy", "PRUNE", "prune_filters"]

Check = Callable[[str, list[str]], None]
"""Raises InvalidParameter for a key's values that the route cannot use."""

_TRUE, _FALSE = ("true", "1"), ("false", "0")


def _go_list(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"  # how dockerd's messages print a filter's values


def boolean(key: str, values: list[str]) -> None:
    if any(v.lower() not in _TRUE + _FALSE for v in values):
        raise errors.InvalidParameter(f"Invalid filter '{key}={_go_list(values)}'")


def integer(message: str = 'strconv.Atoi: parsing "{value}": invalid syntax') -> Check:
    """Whole numbers; `message` (dockerd's words where a number would not parse) is formatted
    with the key and the offending value."""

    def check(key: str, values: list[str]) -> None:
        for v in values:
            try:
                int(v)
            except ValueError:
                raise errors.InvalidParameter(message.format(key=key, value=v)) from None

    return check


def timestamp(key: str, values: list[str]) -> None:
    if len(values) > 1:
        raise errors.InvalidParameter(f"more than one {key} filter specified")
    for v in values:
        parse_since(v)


def one_of(allowed: Collection[str], message: str = "Invalid filter '{key}={value}'") -> Check:
    """Values from `allowed`; `message` is formatted with the key and the offending value."""

    def check(key: str, values: list[str]) -> None:
        for v in values:
            if v not in allowed:
                raise errors.InvalidParameter(message.format(key=key, value=v))

    return check


def checked(raw: dict[str, list[str]], accepted: Mapping[str, Check | None]) -> dict[str, list[str]]:
    """`raw` once every key is one of `accepted` and its values pass the key's check."""
    for key, values in raw.items():
        if key not in accepted:
            raise errors.InvalidParameter(f"Invalid filter '{key}'")
        check = accepted[key]
        if check is not None:
            check(key, values)
    return raw


def truthy(values: list[str] | None, default: bool = False) -> bool:
    """A checked boolean filter's meaning (its first value), `default` when it is not given."""
    return values[0].lower() in _TRUE if values else default


PRUNE: dict[str, Check | None] = {"until": timestamp, "label": None, "label!": None}
"""What container, image and network prune accept (image prune adds dangling)."""


def prune_filters(filters: dict[str, list[str]]) -> PruneFilters:
    until = filters.get("until")
    return PruneFilters(until_ns=parse_since(until[0]) if until else 0, labels=tuple(filters.get("label") or ()),
                        not_labels=tuple(filters.get("label!") or ()))
