"""Formatting helpers shared by the CLI commands, matching what the docker CLI prints.

Durations and sizes follow docker/go-units (HumanDuration, HumanSizeWithPrecision, BytesSize,
RAMInBytes); tables follow Go's text/tabwriter as the docker CLI configures it; templates are a
small subset of Go's text/template (enough for `--format` on inspect/ps/images/events).
"""

from __future__ import annotations

import json
import re
import struct
import time
from typing import Any, Iterable, Iterator

from engine.units import human_duration, ram_in_bytes  # noqa: F401 - the CLI reads sizes through here

# ---------------------------------------------------------------------------------------------
# go-units

_DECIMAL_ABBRS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY_ABBRS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _go_g(value: float, precision: int) -> str:
    # Go's %.<p>g and Python's agree except for the exponent form, which Go writes "1e+03" too.
    return f"{value:.{precision}g}"


def _custom_size(size: float, base: float, abbrs: list[str], precision: int) -> str:
    i = 0
    while size >= base and i < len(abbrs) - 1:
        size /= base
        i += 1
    return f"{_go_g(size, precision)}{abbrs[i]}"


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision (1000 base): 1234567 -> "1.23MB"."""
    return _custom_size(float(size), 1000.0, _DECIMAL_ABBRS, precision)


def bytes_size(size: float) -> str:
    """go-units BytesSize (1024 base, 4 significant digits): 67108864 -> "64MiB"."""
    return _custom_size(float(size), 1024.0, _BINARY_ABBRS, 4)


def parse_duration(text: str) -> float:
    """Go time.ParseDuration subset: "10s", "1m30s", "1.5h", "300ms" -> seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    s = text.strip()
    if s in ("0", ""):
        if s == "":
            raise ValueError(f'time: invalid duration "{text}"')
        return 0.0
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", s):
        if m.start() != pos:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


def parse_timestamp(value: str, now: float | None = None) -> str:
    """Docker's GetTimestamp: a duration (relative to now), an RFC 3339 date or date-time, or a
    unix timestamp "sec[.nanos]"; returns the "sec.nanos" string the API takes."""
    now = time.time() if now is None else now
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return value
    try:
        d = parse_duration(value)
    except ValueError:
        pass
    else:
        return _fmt_unix(now - d)
    import datetime as _dt  # (calendar, datetime: a few ms every command would pay)

    text = value.replace("z", "Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f",
                "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            dt = _dt.datetime.strptime(_trim_nanos(text), fmt)
        except ValueError:
            continue
        if dt.tzinfo is None:
            return _fmt_unix(time.mktime(dt.timetuple()) + dt.microsecond / 1e6)
        return _fmt_unix(dt.timestamp())
    raise ValueError(f"invalid value for time: {value!r}")


def _fmt_unix(t: float) -> str:
    sec = int(t // 1)
    nanos = int(round((t - sec) * 1e9))
    if nanos >= 1_000_000_000:
        sec, nanos = sec + 1, nanos - 1_000_000_000
    return f"{sec}.{nanos:09d}"


def _trim_nanos(text: str) -> str:
    # strptime's %f takes at most 6 digits.
    return re.sub(r"\.(\d{6})\d+", r".\1", text)


def parse_api_time(value: str | int | float | None) -> float | None:
    """Seconds since the epoch from an API time: unix seconds, or RFC 3339 with nanoseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$",
                 value)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    if y <= 1:
        return None  # Go's zero time
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    import calendar

    t = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac
    tz = m.group(8)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def time_ago(t: float | None, now: float | None = None) -> str:
    if t is None:
        return ""
    now = time.time() if now is None else now
    return human_duration(now - t) + " ago"


def rfc3339_nano(ts_nanos: int) -> str:
    """Go's RFC3339NanoFixed in local time: 2024-01-01T00:00:00.000000000Z (or +01:00)."""
    import datetime as _dt

    sec, nanos = divmod(int(ts_nanos), 1_000_000_000)
    dt = _dt.datetime.fromtimestamp(sec).astimezone()
    off = dt.utcoffset() or _dt.timedelta(0)
    if off == _dt.timedelta(0):
        tz = "Z"
    else:
        total = int(off.total_seconds())
        sign = "+" if total >= 0 else "-"
        total = abs(total)
        tz = f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}" + tz


# ---------------------------------------------------------------------------------------------
# strings and ids


def short_id(ident: str, no_trunc: bool = False) -> str:
    """stringid.TruncateID: drop an algorithm prefix and keep 12 characters."""
    if no_trunc:
        return ident
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def ellipsis(s: str, width: int) -> str:
    if width <= 0:
        return ""
    if len(s) <= width:
        return s
    if width == 1:
        return s[0]
    return s[: width - 1] + "…"


def go_quote(s: str) -> str:
    """strconv.Quote, near enough: JSON string escaping keeps printable unicode."""
    return json.dumps(s, ensure_ascii=False)


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """Split "host:5000/repo:tag@sha256:…" into (repo, tag, digest)."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
    return ref, tag, digest


def familiar_ref(ref: str) -> str:
    """Docker's TagNameOnly + FamiliarString: "busybox" -> "busybox:latest"."""
    repo, tag, digest = parse_ref(ref)
    if digest:
        return f"{repo}:{tag}@{digest}" if tag else f"{repo}@{digest}"
    return f"{repo}:{tag or 'latest'}"


# ---------------------------------------------------------------------------------------------
# tables (Go's text/tabwriter as the docker CLI configures it: minwidth, padding 3)


def tabulate(rows: Iterable[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Align cells into columns; the last cell of each row is not padded (tabwriter rules)."""
    rows = [list(r) for r in rows]
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [0] * ncols
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell))
    widths = [max(w + padding, minwidth) for w in widths]
    out = []
    for r in rows:
        line = "".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:-1]))
        line += r[-1] if r else ""
        out.append(line)
    return "\n".join(out) + "\n"


def tabulate_tabs(lines: Iterable[str], minwidth: int = 10, padding: int = 3) -> str:
    """Like `tabulate` for lines whose cells are separated by tab characters."""
    return tabulate([line.split("\t") for line in lines], minwidth, padding)


# ---------------------------------------------------------------------------------------------
# hijacked stream frames (stdcopy)

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
_HEADER = struct.Struct(">BxxxL")


class Demuxer:
    """Incremental decoder of Docker's multiplexed stream: 8-byte headers
    [stream, 0, 0, 0, size (big-endian uint32)] followed by `size` bytes of payload."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            stream, size = _HEADER.unpack_from(self._buf)
            if len(self._buf) < 8 + size:
                break
            frames.append((stream, bytes(self._buf[8 : 8 + size])))
            del self._buf[: 8 + size]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


def demux(data: bytes) -> list[tuple[int, bytes]]:
    return Demuxer().feed(data)


def frame(stream: int, payload: bytes) -> bytes:
    return _HEADER.pack(stream, len(payload)) + payload


# ---------------------------------------------------------------------------------------------
# filters and key=value lists


def parse_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """`--filter k=v` flags -> {"k": ["v", …]} (the API's map[string][]string)."""
    out: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"bad format of filter (expected name=value): {item}")
        k, v = item.split("=", 1)
        k = k.strip().lower()
        out.setdefault(k, [])
        if v not in out[k]:
            out[k].append(v)
    return out


def filters_param(items: Iterable[str]) -> str | None:
    f = parse_filters(items)
    return json.dumps(f, separators=(",", ":")) if f else None


# ---------------------------------------------------------------------------------------------
# Go template subset: literal text, {{.A.B}}, {{.}}, {{json .X}}, {{index .X "k"}},
# {{lower .X}}, {{upper .X}}, {{title .X}}, {{join .X ","}}, {{len .X}}, {{println}} and pipes
# into those functions ({{.X | json}}).


class TemplateError(ValueError):
    pass


_ACTION_RE = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|[^\s|]+|\|')


def _tokens(expr: str) -> list[str]:
    return _TOKEN_RE.findall(expr)


def _lookup(data: Any, path: str) -> Any:
    if path == ".":
        return data
    cur = data
    for part in path.split(".")[1:]:
        if part == "":
            continue
        if isinstance(cur, dict):
            if part not in cur:
                return _NoValue
            cur = cur[part]
        elif cur is None or cur is _NoValue:
            raise TemplateError(f"nil pointer evaluating .{part}")
        else:
            cur = getattr(cur, part, _NoValue)
    return cur


class _NoValueType:
    def __repr__(self) -> str:
        return "<no value>"


_NoValue = _NoValueType()


def go_str(v: Any) -> str:
    """Print a value the way Go's text/template does for decoded JSON."""
    if v is _NoValue:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    return str(v)


def _arg_value(tok: str, data: Any) -> Any:
    if tok.startswith(".") :
        return _lookup(data, tok)
    if tok.startswith('"'):
        return json.loads(tok)
    if tok.startswith("`"):
        return tok[1:-1]
    if re.fullmatch(r"-?\d+", tok):
        return int(tok)
    if tok in ("true", "false"):
        return tok == "true"
    raise TemplateError(f'function "{tok}" not defined')


def _call(fn: str, args: list[Any]) -> Any:
    if fn == "json":
        (v,) = args
        return json.dumps(None if v is _NoValue else v, separators=(",", ":"))
    if fn == "index":
        v = args[0]
        for k in args[1:]:
            v = v.get(k, _NoValue) if isinstance(v, dict) else v[k]
        return v
    if fn == "lower":
        return go_str(args[0]).lower()
    if fn == "upper":
        return go_str(args[0]).upper()
    if fn == "title":
        return go_str(args[0]).title()
    if fn == "join":
        return args[1].join(go_str(x) for x in (args[0] or []))
    if fn == "len":
        return len(args[0])
    if fn == "println":
        return " ".join(go_str(a) for a in args) + "\n"
    if fn == "print":
        return "".join(go_str(a) for a in args)
    raise TemplateError(f'function "{fn}" not defined')


_FUNCS = {"json", "index", "lower", "upper", "title", "join", "len", "println", "print"}


def _eval_action(expr: str, data: Any) -> Any:
    toks = _tokens(expr)
    if not toks:
        raise TemplateError("missing value for command")
    pipeline: list[list[str]] = [[]]
    for t in toks:
        if t == "|":
            pipeline.append([])
        else:
            pipeline[-1].append(t)
    value: Any = _NoValue
    first = True
    for cmd in pipeline:
        if not cmd:
            raise TemplateError("missing command in pipeline")
        head, rest = cmd[0], cmd[1:]
        if head in _FUNCS:
            args = [_arg_value(t, data) for t in rest]
            if not first:
                args.append(value)
            value = _call(head, args)
        elif first and not rest:
            value = _arg_value(head, data)
        else:
            raise TemplateError(f"can't evaluate {' '.join(cmd)}")
        first = False
    return value


def compile_template(text: str) -> list[tuple[str, str]]:
    """Split a template into ("text", s) and ("action", expr) parts; raises TemplateError."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION_RE.finditer(text):
        lit = text[pos : m.start()]
        if m.group(0).startswith("{{-"):
            lit = lit.rstrip()
        if lit:
            parts.append(("text", lit))
        parts.append(("action", m.group(1)))
        pos = m.end()
    tail = text[pos:]
    if "{{" in tail:
        raise TemplateError("unclosed action")
    if tail:
        parts.append(("text", tail))
    return parts


def render(template: str | list[tuple[str, str]], data: Any) -> str:
    parts = compile_template(template) if isinstance(template, str) else template
    out = []
    for kind, s in parts:
        if kind == "text":
            out.append(s)
        else:
            v = _eval_action(s, data)
            out.append(v if isinstance(v, str) else go_str(v))
    return "".join(out)


def template_fields(template: str) -> list[str]:
    """The fields an action reads first, e.g. "{{.ID}}\t{{.Names}}" -> ["ID", "Names"]."""
    return [m.group(1) for m in re.finditer(r"\{\{-?\s*(?:\w+\s+)?\.(\w+)", template)]


def prepare_format(fmt: str) -> tuple[bool, str]:
    """Docker's preFormat: strip a "table" prefix, trim, turn literal \\t and \\n into
    characters. Returns (is_table, template)."""
    table = fmt.startswith("table")
    if table:
        fmt = fmt[len("table") :]
    fmt = fmt.strip(" ")
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return table, fmt


def render_rows(fmt: str, rows: list[dict], headers: dict[str, str]) -> str:
    """Render `--format` output for list commands; with a "table" prefix add a header row
    and align the tab-separated cells."""
    table, tmpl = prepare_format(fmt)
    compiled = compile_template(tmpl)
    lines = [render(compiled, r) for r in rows]
    if not table:
        return "".join(line + "\n" for line in lines)
    header_row = render(compiled, {k: headers.get(k, k.upper()) for k in _all_keys(rows, tmpl,
                                                                                    headers)})
    return tabulate_tabs([header_row] + lines, minwidth=10)


def _all_keys(rows: list[dict], tmpl: str, headers: dict[str, str]) -> list[str]:
    keys = set(headers)
    for r in rows:
        keys.update(r)
    keys.update(template_fields(tmpl))
    return sorted(keys)


def iter_json_stream(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Decode a stream of concatenated / newline-separated JSON documents."""
    dec = json.JSONDecoder()
    buf = ""
    for chunk in chunks:
        buf += chunk.decode("utf-8", "replace")
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = dec.raw_decode(buf)
            except json.JSONDecodeError:
                break
            yield obj
            buf = buf[end:]
