""".dockerignore: Go's filepath.Match patterns plus `**` (any number of directories) and `!`
exceptions, the last matching pattern winning, a pattern matching a parent directory
matching everything below it — Docker's patternmatcher semantics."""

from __future__ import annotations

import posixpath
import re

import attrs


@attrs.frozen
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern
    depth: int  # number of path components in the pattern


def read_patterns(text: str | bytes) -> list[str]:
    """Lines of a .dockerignore → cleaned patterns ("!" kept in front of exceptions)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/") or "/"
        out.append("!" + pattern if invert else pattern)
    return out


def _compile(pattern: str) -> re.Pattern:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = i + 1
            if j < n and pattern[j] in "^!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"syntax error in pattern {pattern!r}")
            body = pattern[i + 1:j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out.append(re.escape(pattern[i]))
            else:
                out.append(re.escape("\\"))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.S)


class DockerIgnore:
    def __init__(self, patterns: list[str]):
        self.patterns: list[_Pattern] = []
        for p in patterns:
            exclusion = p.startswith("!")
            text = p[1:] if exclusion else p
            if not text:
                continue
            self.patterns.append(_Pattern(text, exclusion, _compile(text), len(text.split("/"))))
        self.has_exceptions = any(p.exclusion for p in self.patterns)

    @classmethod
    def from_text(cls, text: str | bytes) -> "DockerIgnore":
        return cls(read_patterns(text))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        """Is this context-relative path (slash separated) excluded?"""
        path = posixpath.normpath(path).lstrip("/")
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue
            hit = bool(p.regex.match(path))
            if not hit and parent != "." and p.depth <= len(parent_dirs):
                hit = bool(p.regex.match("/".join(parent_dirs[:p.depth])))
            if hit:
                matched = not p.exclusion
        return matched
