"""Variable interpolation in compose files: `$VAR`, `${VAR}`, `${VAR:-default}`,
`${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` for a
literal `$`. Values only (keys are never interpolated); defaults may nest `${…}`."""

from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import InterpolationError, key_path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Missing(Exception):
    def __init__(self, message: str):
        self.message = message


def interpolate_string(text: str, env: Mapping[str, str]) -> str:
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if i + 1 < n and text[i + 1] == "{":
            end = _closing_brace(text, i + 2)
            out.append(_braced(text[i + 2:end], env))
            i = end + 1
            continue
        m = _NAME.match(text, i + 1)
        if m:
            out.append(env.get(m.group(0), ""))
            i = m.end()
            continue
        raise _Missing(f"invalid interpolation format for {text!r}: a lone '$' (use '$$')")
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise _Missing(f"invalid interpolation format for {text!r}: missing '}}'")


def _braced(expr: str, env: Mapping[str, str]) -> str:
    m = _NAME.match(expr)
    if not m:
        raise _Missing(f"invalid interpolation format for '${{{expr}}}'")
    name, rest = m.group(0), expr[m.end():]
    if not rest:
        return env.get(name, "")
    value = env.get(name)
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        raise _Missing(f"invalid interpolation format for '${{{expr}}}'")
    unset_or_empty = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return interpolate_string(arg, env) if unset_or_empty else value
    if op in (":+", "+"):
        return "" if unset_or_empty else interpolate_string(arg, env)
    if unset_or_empty:  # ? / :?
        message = interpolate_string(arg, env) or f"variable {name} is not set"
        raise _Missing(f"required variable {name} is missing a value: {message}")
    return value


# Values that YAML would have typed had they been written literally: a substituted string
# at one of these paths is cast back ("replicas: ${N}" is an integer), as Compose does.
_INT, _FLOAT, _BOOL = int, float, bool
_CASTS: list[tuple[tuple, type]] = [
    (("services", "*", "deploy", "replicas"), _INT), (("services", "*", "scale"), _INT),
    (("services", "*", "ports", "*", "target"), _INT),
    (("services", "*", "ports", "*", "published"), _INT),
    (("services", "*", "healthcheck", "retries"), _INT),
    (("services", "*", "pids_limit"), _INT), (("services", "*", "cpus"), _FLOAT),
    (("services", "*", "cpu_shares"), _INT), (("services", "*", "oom_score_adj"), _INT),
    (("services", "*", "mem_swappiness"), _INT), (("services", "*", "oom_kill_disable"), _BOOL),
    (("services", "*", "blkio_config", "weight"), _INT),
    (("services", "*", "blkio_config", "weight_device", "*", "weight"), _INT),
    (("services", "*", "ulimits", "*"), _INT), (("services", "*", "ulimits", "*", "*"), _INT),
    (("services", "*", "deploy", "resources", "limits", "pids"), _INT),
    (("services", "*", "healthcheck", "disable"), _BOOL),
    (("services", "*", "depends_on", "*", "required"), _BOOL),
    (("services", "*", "depends_on", "*", "restart"), _BOOL),
    (("services", "*", "volumes", "*", "read_only"), _BOOL),
    (("services", "*", "init"), _BOOL), (("services", "*", "privileged"), _BOOL),
    (("services", "*", "read_only"), _BOOL), (("services", "*", "tty"), _BOOL),
    (("services", "*", "stdin_open"), _BOOL), (("networks", "*", "external"), _BOOL),
    (("networks", "*", "internal"), _BOOL), (("networks", "*", "attachable"), _BOOL),
    (("volumes", "*", "external"), _BOOL),
]
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


def _matches(path: tuple, pattern: tuple) -> bool:
    return len(path) == len(pattern) and all(p == "*" or p == k for k, p in zip(path, pattern))


def _cast(value: str, path: tuple) -> Any:
    for pattern, typ in _CASTS:
        if not _matches(path, pattern):
            continue
        text = value.strip()
        try:
            if typ is bool:
                if text.lower() in _TRUE | _FALSE:
                    return text.lower() in _TRUE
            else:
                return typ(text)
        except ValueError:
            pass
    return value  # the schema reports what still does not fit


def interpolate(doc: Any, env: Mapping[str, str], source: str = "",
                path: tuple = ()) -> Any:
    """A copy of a loaded YAML document with every string value interpolated; errors name
    the file and the key path."""
    if isinstance(doc, dict):
        return {k: interpolate(v, env, source, path + (k,)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [interpolate(v, env, source, path + (i,)) for i, v in enumerate(doc)]
    if isinstance(doc, str):
        try:
            value = interpolate_string(doc, env)
        except _Missing as exc:
            where = f"{source}: " if source else ""
            raise InterpolationError(f"{where}{key_path(path)}: {exc.message}") from None
        return _cast(value, path) if "$" in doc else value
    return doc
