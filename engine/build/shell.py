"""Dockerfile variable substitution: the word lexer the classic builder applies to ENV, ARG,
LABEL, COPY/ADD, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL and FROM.

Rules (as Docker's shell lexer): single quotes are literal; inside double quotes the escape
character only escapes `"`, `$` and itself; outside quotes it escapes any character; `$VAR`,
`${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`,
`${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`. Quotes are removed."""

from __future__ import annotations

import fnmatch

from engine.errors import InvalidParameter

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def env_dict(env: list[str] | dict | None) -> dict[str, str]:
    if env is None:
        return {}
    if isinstance(env, dict):
        return dict(env)
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


class _Scanner:
    def __init__(self, text: str, escape: str, env: dict[str, str]):
        self.text = text
        self.i = 0
        self.escape = escape
        self.env = env

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch


class ShellLex:
    """`ShellLex(escape).word(text, env)` → one string; `.words(text, env)` → words split on
    unquoted whitespace (what FROM/EXPOSE/COPY sources get)."""

    def __init__(self, escape: str = "\\"):
        self.escape = escape

    def word(self, text: str, env) -> str:
        return "".join(self._process(text, env_dict(env), split=False)[0] or [""])

    def words(self, text: str, env) -> list[str]:
        return self._process(text, env_dict(env), split=True)[0]

    # ------------------------------------------------------------------ scanning

    def _process(self, text: str, env: dict[str, str], split: bool, stop: str = "") -> tuple[list[str], int]:
        s = _Scanner(text, self.escape, env)
        words, _ = self._scan(s, split, stop)
        return words, s.i

    def _scan(self, s: _Scanner, split: bool, stop: str) -> tuple[list[str], bool]:
        words: list[str] = []
        cur: list[str] = []
        in_word = False
        while s.i < len(s.text):
            ch = s.peek()
            if stop and ch == stop:
                break
            if split and ch in " \t\r\n":
                s.next()
                if in_word:
                    words.append("".join(cur))
                    cur, in_word = [], False
                continue
            in_word = True
            if ch == s.escape:
                s.next()
                if s.i >= len(s.text):
                    cur.append(ch)
                else:
                    cur.append(s.next())
            elif ch == "'":
                s.next()
                cur.append(self._single(s))
            elif ch == '"':
                s.next()
                cur.append(self._double(s))
            elif ch == "$":
                value = self._dollar(s)
                if split and value and not stop:
                    # an unquoted expansion is itself split on whitespace
                    parts = value.split()
                    if value[:1].isspace() and cur:
                        words.append("".join(cur))
                        cur = []
                    for j, part in enumerate(parts):
                        cur.append(part)
                        if j < len(parts) - 1:
                            words.append("".join(cur))
                            cur = []
                    if value[-1:].isspace() and cur:
                        words.append("".join(cur))
                        cur, in_word = [], False
                else:
                    cur.append(value)
            else:
                cur.append(s.next())
        if in_word:
            words.append("".join(cur))
        return words, True

    def _single(self, s: _Scanner) -> str:
        out = []
        while True:
            ch = s.next()
            if ch == "":
                raise InvalidParameter("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def _double(self, s: _Scanner) -> str:
        out = []
        while True:
            ch = s.peek()
            if ch == "":
                raise InvalidParameter("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                s.next()
                return "".join(out)
            if ch == "$":
                out.append(self._dollar(s))
                continue
            s.next()
            if ch == s.escape:
                nxt = s.peek()
                if nxt in ('"', "$", s.escape):
                    out.append(s.next())
                    continue
                if nxt == "":
                    raise InvalidParameter("unexpected end of statement while looking for matching double-quote")
            out.append(ch)

    def _name(self, s: _Scanner) -> str:
        start = s.i
        while s.peek() and s.peek() in _NAME_CHARS:
            s.i += 1
        return s.text[start:s.i]

    def _dollar(self, s: _Scanner) -> str:
        s.next()  # '$'
        ch = s.peek()
        if ch == "{":
            s.next()
            name = self._name(s)
            if not name:
                raise InvalidParameter(f"missing name in substitution: {s.text!r}")
            op = s.peek()
            if op == "}":
                s.next()
                return s.env.get(name, "")
            colon = False
            if op == ":":
                colon = True
                s.next()
                op = s.peek()
            if op in ("-", "+", "?"):
                s.next()
                word = self._nested(s)
                value = s.env.get(name)
                unset = value is None or (colon and value == "")
                if op == "-":
                    return word if unset else value
                if op == "+":
                    return "" if unset else word
                if unset:
                    raise InvalidParameter(f"{name}: {word or 'is not allowed to be unset'}")
                return value
            if not colon and op in ("#", "%"):
                s.next()
                greedy = s.peek() == op
                if greedy:
                    s.next()
                pattern = self._nested(s)
                return _trim(s.env.get(name, ""), pattern, op == "#", greedy)
            raise InvalidParameter(f"unsupported modifier ({op}) in substitution: {s.text!r}")
        if ch and ch in _NAME_CHARS and not ch.isdigit():
            return s.env.get(self._name(s), "")
        if ch.isdigit() if ch else False:
            s.next()  # positional parameters are always empty in a Dockerfile
            return ""
        return "$"

    def _nested(self, s: _Scanner) -> str:
        """The word after a modifier, up to the matching '}' (expanded, quotes removed)."""
        sub = _Scanner(s.text, s.escape, s.env)
        sub.i = s.i
        words, _ = self._scan(sub, False, "}")
        if sub.peek() != "}":
            raise InvalidParameter(f"syntax error: missing '}}' in {s.text!r}")
        s.i = sub.i + 1
        return "".join(words)


def _trim(value: str, pattern: str, prefix: bool, greedy: bool) -> str:
    spans = range(len(value), -1, -1) if greedy else range(0, len(value) + 1)
    for n in spans:
        piece = value[:n] if prefix else value[len(value) - n:]
        if fnmatch.fnmatchcase(piece, pattern):
            return value[n:] if prefix else value[:len(value) - n]
    return value
