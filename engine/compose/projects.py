"""`compose ls`: the projects on a daemon, known only from their containers' labels (no
file needed), with Docker Compose's combined status ("exited(1), running(2)")."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

from . import labels as L
from .errors import ComposeError


@dataclass(frozen=True)
class ProjectSummary:
    name: str
    status: str
    config_files: str

    def as_json(self) -> dict:
        return {"Name": self.name, "Status": self.status, "ConfigFiles": self.config_files}


def containers_filter() -> str:
    """GET /containers/json filters: every container that belongs to a compose project."""
    return json.dumps({"label": [L.PROJECT]})


def combined_status(states: list[str]) -> str:
    counts = Counter(states)
    return ", ".join(f"{state}({counts[state]})" for state in sorted(counts))


def summarize(containers: list[dict]) -> list[ProjectSummary]:
    """Group containers by project (sorted by name)."""
    by_project: dict[str, list[dict]] = {}
    for c in containers:
        name = (c.get("Labels") or {}).get(L.PROJECT)
        if name:
            by_project.setdefault(name, []).append(c)
    out = []
    for name in sorted(by_project):
        members = by_project[name]
        files: list[str] = []
        for c in members:
            for f in ((c.get("Labels") or {}).get(L.CONFIG_FILES) or "").split(","):
                if f and f not in files:
                    files.append(f)
        out.append(ProjectSummary(name, combined_status([c.get("State", "") for c in members]),
                                  ",".join(files)))
    return out


def name_filter(items: list[str]) -> list[re.Pattern]:
    """--filter name=REGEX (the only filter Compose accepts for ls)."""
    patterns = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ComposeError(f"bad format of filter (expected name=value): {item}")
        if key != "name":
            raise ComposeError(f"invalid filter '{key}'")
        try:
            patterns.append(re.compile(value))
        except re.error:
            raise ComposeError(f"invalid filter 'name={value}': not a regular expression") \
                from None
    return patterns


def matching(projects: list[ProjectSummary], patterns: list[re.Pattern]) -> list[ProjectSummary]:
    if not patterns:
        return projects
    return [p for p in projects if any(pat.search(p.name) for pat in patterns)]
