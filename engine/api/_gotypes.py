"""Docker's JSON bodies checked as dockerd's Go decoder reads them: a value of the wrong JSON
type is a 400 ("json: cannot unmarshal …"), never a Python error further in (a 500)."""

from __future__ import annotations

from engine import errors

__all__ = ["expect", "str_list", "str_map"]

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
