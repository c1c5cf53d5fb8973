"""This process's mount table (/proc/self/mountinfo), read in one place: mountinfo escapes
space, tab, newline and backslash in paths as \\ooo, which every reader must undo."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def read(path: str = "/proc/self/mountinfo") -> str:
    with open(path) as f:
        return f.read()


def mount_points(below: str | None = None, text: str | None = None) -> list[str]:
    """Mount points in mount order (parents before what is mounted on or under them); with
    `below`, only those strictly under that directory."""
    prefix = below.rstrip("/") + "/" if below is not None else ""
    points = []
    for line in (read() if text is None else text).splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = unescape(fields[4])
            if point.startswith(prefix):
                points.append(point)
    return points


def is_mount_point(path: str) -> bool:
    try:
        return path in mount_points()
    except OSError:
        return False


def mount_of(path: str, text: str | None = None) -> tuple[str, list[str]]:
    """(mount point, optional fields such as "shared:1") of the mount holding `path`: the
    longest mount point that contains it, the later entry winning when one is mounted over
    another."""
    best, fields = "/", []
    for line in (read() if text is None else text).splitlines():
        parts = line.split()
        if len(parts) < 7 or "-" not in parts:
            continue
        point = unescape(parts[4])
        if path == point or path.startswith(point.rstrip("/") + "/"):
            if len(point) >= len(best):
                best, fields = point, parts[6:parts.index("-")]
    return best, fields
