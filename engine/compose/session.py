"""What every compose operation works with: the API, the loaded project and a progress view."""

from __future__ import annotations

from dataclasses import dataclass

from . import labels as L
from .api import Api
from .model import Project


@dataclass
class Session:
    api: Api
    project: Project
    progress: object  # PlainProgress | RichProgress | QuietProgress
    warn: object = print  # one-line warnings (the CLI's stderr writer)

    def containers(self, *, oneoff: bool | None = False,
                   service: str | None = None) -> list[dict]:
        """The project's containers on the daemon (all states), found by label."""
        return self.api.containers(L.project_filter(self.project.name, oneoff=oneoff,
                                                    service=service))


def container_name(summary: dict) -> str:
    names = summary.get("Names") or [summary.get("Name") or summary["Id"][:12]]
    return names[0].lstrip("/")
