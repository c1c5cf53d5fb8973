"""`pyengine compose`: the Compose Specification run natively as an Engine API client.

    loader (files, .env, interpolation, schema, merge, extends, profiles) -> model.Project
    planner (pure: what `up` must do per service, from the containers' labels)
    up / lifecycle / images / resources / logs: the operations, as tasks (tasks.py) over api.Api

It never imports daemon internals, so it works against dockerd as well as pyengined.
"""

from . import injection, labels, logs, projects
from .api import Api
from .containerspec import create_body
from .errors import ComposeError, ConfigError, InterpolationError, NoConfigFile
from .foreground import ForegroundOptions
from .foreground import run as run_foreground
from .images import build, ensure_images, pull, push
from .lifecycle import down, kill, restart, rm, start, stop
from .loader import LoadOptions, empty_project, load_project
from .logs import follow
from .model import Dependency, Project, Service
from .oneoff import RunOptions, create_oneoff
from .progress import make_progress
from .resources import ensure_resources
from .session import Session, container_name
from .up import UpOptions, up, wait_condition

__all__ = [
    "injection", "labels", "logs", "projects", "Api", "create_body", "ComposeError", "ConfigError", "InterpolationError", "NoConfigFile",
    "build", "ensure_images", "pull", "push", "down", "kill", "restart", "rm", "start", "stop",
    "LoadOptions", "load_project", "empty_project", "follow", "Dependency", "Project", "Service",
    "make_progress", "ensure_resources", "Session", "container_name", "UpOptions", "up",
    "wait_condition", "RunOptions", "create_oneoff", "ForegroundOptions", "run_foreground",
]
