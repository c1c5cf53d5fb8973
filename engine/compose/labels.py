"""Docker Compose's object labels: how docker-compose (1.29 and v2) and `pyengine compose`
recognise the same project's containers, networks and volumes on a daemon."""

from __future__ import annotations

import json

from engine import __version__

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
CONFIG_HASH = "com.docker.compose.config-hash"
VERSION = "com.docker.compose.version"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
DEPENDS_ON = "com.docker.compose.depends_on"
IMAGE = "com.docker.compose.image"
NETWORK = "com.docker.compose.network"
VOLUME = "com.docker.compose.volume"

COMPOSE_VERSION = f"pyengine-{__version__}"


def project_filter(project: str, *, oneoff: bool | None = False,
                   service: str | None = None) -> str:
    """A `filters` query value selecting a project's containers."""
    labels = [f"{PROJECT}={project}"]
    if oneoff is not None:
        labels.append(f"{ONEOFF}={'True' if oneoff else 'False'}")
    if service:
        labels.append(f"{SERVICE}={service}")
    return json.dumps({"label": labels})


def number_of(container: dict) -> int:
    try:
        return int((container.get("Labels") or {}).get(NUMBER, "0"))
    except ValueError:
        return 0
