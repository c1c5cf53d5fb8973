"""Dockerfile text → nodes (one per instruction), as Docker's parser reads it: parser
directives (`# escape=`), line continuations, comments (also inside continuations), JSON and
shell forms, leading `--flag=value` words. Variable substitution is left to the executor,
which knows the environment of each step."""

from __future__ import annotations

import json
import re

import attrs

from engine.errors import InvalidParameter

_DIRECTIVE_RE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_KNOWN_DIRECTIVES = {"escape", "syntax", "check"}

# keyword → how its arguments are read
_FORMS = {
    "add": "list", "copy": "list", "volume": "list",
    "arg": "namevals", "env": "env", "label": "namevals",
    "cmd": "json", "entrypoint": "json", "run": "json", "shell": "json",
    "expose": "words", "from": "words",
    "healthcheck": "healthcheck", "onbuild": "onbuild",
    "maintainer": "string", "stopsignal": "string", "user": "string", "workdir": "string",
}


class ParseError(InvalidParameter):
    """A Dockerfile error, located: Docker's "dockerfile parse error line N: …"."""

    def __init__(self, line: int, message: str):
        super().__init__(f"dockerfile parse error line {line}: {message}")
        self.line = line
        self.detail = message


class SyntaxProblem(InvalidParameter):
    """An instruction's arguments the Dockerfile grammar itself refuses (ENV's key=value
    forms): dockerd reports these as "failed to parse Dockerfile: …", without a line."""

    def __init__(self, message: str):
        super().__init__(f"failed to parse Dockerfile: {message}")
        self.detail = message


@attrs.frozen
class Node:
    keyword: str                   # lower case: "run", "copy", …
    args: tuple[str, ...]          # JSON form: the array; shell form: per the keyword's form
    flags: tuple[str, ...] = ()    # "--from=build", "--chown=1:1" as written
    json_form: bool = False
    original: str = ""             # the logical line as written (continuations joined)
    line: int = 0                  # first line of the instruction (1-based)
    sub: "Node | None" = None      # ONBUILD's instruction


@attrs.frozen
class Dockerfile:
    nodes: tuple[Node, ...]
    escape: str = "\\"
    warnings: tuple[str, ...] = ()


def parse(text: str | bytes) -> Dockerfile:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines()
    escape = "\\"
    seen_directives: set[str] = set()
    i = 0
    # Parser directives: only at the very top, before any other line.
    while i < len(lines):
        m = _DIRECTIVE_RE.match(lines[i])
        if not m or m.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        name = m.group(1).lower()
        if name in seen_directives:
            raise ParseError(i + 1, f"only one {name} parser directive can be used")
        seen_directives.add(name)
        if name == "escape":
            if m.group(2) not in ("\\", "`"):
                raise ParseError(i + 1, f"invalid escape token '{m.group(2)}' does not match ` or \\")
            escape = m.group(2)
        i += 1
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    nodes: list[Node] = []
    warnings: list[str] = []
    empty_in_continuation = False
    while i < len(lines):
        start = i + 1
        raw = lines[i]
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = []
        text_line = raw.lstrip()
        while continuation.search(text_line):
            parts.append(continuation.sub("", text_line))
            # gather the next non-comment line
            while i < len(lines):
                nxt = lines[i]
                i += 1
                if nxt.strip().startswith("#"):
                    continue
                if not nxt.strip():
                    empty_in_continuation = True
                    continue
                text_line = nxt
                break
            else:
                text_line = ""
                break
        parts.append(text_line)
        logical = "".join(parts).strip()
        if not logical:
            continue
        nodes.append(parse_line(logical, start, escape))
    if empty_in_continuation:
        warnings.append("[WARNING]: Empty continuation line found in Dockerfile; "
                        "empty continuation lines will become errors in a future release.")
    return Dockerfile(nodes=tuple(nodes), escape=escape, warnings=tuple(warnings))


def parse_line(logical: str, line: int, escape: str = "\\") -> Node:
    m = re.match(r"^\s*(\S+)\s*(.*)$", logical, re.S)
    if not m:
        raise ParseError(line, "empty instruction")
    keyword = m.group(1).lower()
    rest = m.group(2)
    flags, rest = _extract_flags(rest)
    form = _FORMS.get(keyword)
    if form is None:
        raise ParseError(line, f"unknown instruction: {m.group(1).upper()}")
    json_form = False
    sub = None
    try:
        if form == "json":
            args, json_form = _maybe_json(rest)
        elif form == "list":
            args, json_form = _maybe_json(rest)
            if not json_form:
                args = tuple(_split_ws(rest))
        elif form == "words":
            args = tuple(_split_ws(rest))
        elif form == "string":
            args = (rest.strip(),) if rest.strip() else ()
        elif form == "env":
            args = _name_vals(rest, keyword, escape, allow_old_form=True)
        elif form == "namevals":
            args = _name_vals(rest, keyword, escape, allow_old_form=keyword == "label")
        elif form == "healthcheck":
            args, json_form = _healthcheck(rest)
        else:  # onbuild
            if not rest.strip():
                raise ParseError(line, "ONBUILD requires at least one argument")
            sub = parse_line(rest, line, escape)
            if sub.keyword in ("onbuild", "from", "maintainer"):
                raise ParseError(line, f"{sub.keyword.upper()} isn't allowed as an ONBUILD trigger")
            args = (rest.strip(),)
    except (ParseError, SyntaxProblem):
        raise
    except InvalidParameter as exc:
        raise ParseError(line, exc.message) from None
    return Node(keyword=keyword, args=tuple(args), flags=tuple(flags), json_form=json_form,
                original=logical, line=line, sub=sub)


def _extract_flags(rest: str) -> tuple[list[str], str]:
    """Leading `--name[=value]` words (quotes allowed in the value)."""
    flags: list[str] = []
    s = rest.lstrip()
    while s.startswith("--"):
        j, quote = 0, ""
        while j < len(s):
            ch = s[j]
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch in " \t":
                break
            j += 1
        word = s[:j]
        if word == "--":
            s = s[j:].lstrip()
            break
        flags.append(_unquote(word))
        s = s[j:].lstrip()
    return flags, s


def _unquote(word: str) -> str:
    name, eq, value = word.partition("=")
    if eq and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return name + eq + value


def _maybe_json(rest: str) -> tuple[tuple[str, ...], bool]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value), True
    return ((text,) if text else ()), False


def _split_ws(rest: str) -> list[str]:
    return rest.split()


def _words_keep_quotes(rest: str, escape: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes (they go to the expander)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch == escape and quote != "'" and i + 1 < len(rest):
            cur.append(ch + rest[i + 1])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            cur.append(ch)
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch in " \t\r\n":
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        words.append("".join(cur))
    return words


def _name_vals(rest: str, keyword: str, escape: str, allow_old_form: bool) -> tuple[str, ...]:
    """ENV/LABEL/ARG arguments as ("key=value" | "key", …), values still quoted.
    The old `ENV key value…` form becomes one "key=value…"."""
    words = _words_keep_quotes(rest, escape)
    if not words:
        raise InvalidParameter(f"{keyword.upper()} requires at least one argument")
    if keyword == "arg":
        return tuple(words)
    if "=" not in words[0]:
        if not allow_old_form:
            raise SyntaxProblem(f"{keyword.upper()} names can not be blank")
        parts = rest.strip().split(None, 1)
        if len(parts) < 2:
            raise SyntaxProblem(f"{keyword.upper()} must have two arguments")
        return (f"{parts[0]}={_quote_old_value(parts[1].strip())}",)
    for w in words:
        if "=" not in w:
            raise SyntaxProblem(f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        if w.startswith("="):  # this one dockerd reports at the line
            raise InvalidParameter(f"{keyword.upper()} names can not be blank")
    return tuple(words)


def _quote_old_value(value: str) -> str:
    """The old form keeps its value as written, whitespace and all (quotes still removed by
    the expander like the new form): protect inner whitespace from splitting only."""
    return value


def _healthcheck(rest: str) -> tuple[tuple[str, ...], bool]:
    text = rest.strip()
    if not text:
        raise InvalidParameter("HEALTHCHECK requires at least one argument")
    kind, _, cmd = text.partition(" ")
    kind = kind.upper()
    if kind == "NONE":
        if cmd.strip():
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return ("NONE",), False
    if kind != "CMD":
        raise InvalidParameter(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    args, json_form = _maybe_json(cmd)
    if not args:
        raise InvalidParameter("Missing command after HEALTHCHECK CMD")
    return ("CMD",) + args, json_form
