"""Docker's JSON bodies checked as dockerd's Go decoder reads them: a value of the wrong JSON
type is a 400 ("json: cannot unmarshal …"), never a Python error further in (a 500)."""

from __future__ import annotations

import functools

from engine import errors

__all__ = ["expect", "go_keys", "json_object", "str_list", "str_map"]

_GO_NAMES = {dict: "map", list: "array", str: "string", bool: "bool", int: "int"}
_JSON_NAMES = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}


def expect(value, kind, field: str, default):
    """`value` when it is of the JSON type `kind` (a Python type), `default` when it is null."""
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise errors.InvalidParameter(
            f"json: cannot unmarshal {_JSON_NAMES.get(type(value), type(value).__name__)} into Go struct field "
            f"{field} of type {_GO_NAMES.get(kind, kind.__name__)}")
    return value


def json_object(value, go_type: str) -> dict:
    """A whole request body that must be a JSON object ({} for null), worded as dockerd's
    decoder words a body of another type for `go_type`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidParameter(
            f"json: cannot unmarshal {_JSON_NAMES.get(type(value), 'number')} into Go value of type {go_type}")
    return value


def go_keys(body: dict, fields: frozenset[str]) -> dict:
    """`body` with each key named as the struct field Go's decoder puts it in: `fields`
    matched exactly or, failing that, case-insensitively (docker-py sends
    "CPURealtimePeriod" for CpuRealtimePeriod); a later key wins, as in Go. Keys of no field
    stay as they are."""
    canonical = _canonical(fields)
    return {canonical.get(key.lower(), key) if key not in fields else key: value for key, value in body.items()}


@functools.lru_cache(maxsize=16)
def _canonical(fields: frozenset[str]) -> dict[str, str]:
    return {name.lower(): name for name in fields}


def str_map(value, field: str) -> dict:
    value = expect(value, dict, field, {})
    if not all(isinstance(v, str) for v in value.values()):
        raise errors.InvalidParameter(f"json: cannot unmarshal a non-string value into Go struct field {field} of type string")
    return dict(value)


def str_list(value, field: str) -> list:
    value = expect(value, list, field, [])
    if not all(isinstance(v, str) for v in value):
        raise errors.InvalidParameter(f"json: cannot unmarshal a non-string value into Go struct field {field} of type string")
    return list(value)
