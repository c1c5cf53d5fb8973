"""`pyengine compose`: the Compose Specification run natively as an Engine API client.

    loader (files, .env, interpolation, schema, merge, extends, profiles) -> model.Project
    planner (pure: what `up` must do per service, from the containers' labels)
    up / lifecycle / images / resources / logs: the operations, as tasks (tasks.py) over api.Api

It never imports daemon internals, so it works against dockerd as well as pyengined.
"""

# Every name is loaded from its module on first use (PEP 562): a command imports only the
# operations it runs (each `pyengine compose` is a fresh process).
_EXPORTS = {
    "Api": "api", "create_body": "containerspec",
    "ComposeError": "errors", "ConfigError": "errors", "InterpolationError": "errors",
    "NoConfigFile": "errors", "ForegroundOptions": "foreground",
    "build": "images", "ensure_images": "images", "pull": "images", "push": "images",
    "down": "lifecycle", "kill": "lifecycle", "restart": "lifecycle", "rm": "lifecycle",
    "start": "lifecycle", "stop": "lifecycle",
    "LoadOptions": "loader", "empty_project": "loader", "load_project": "loader",
    "follow": "logs", "Dependency": "model", "Project": "model", "Service": "model",
    "RunOptions": "oneoff", "create_oneoff": "oneoff", "make_progress": "progress",
    "ensure_resources": "resources", "Session": "session", "container_name": "session",
}
_RENAMED = {"run_foreground": ("foreground", "run")}
_MODULES = ("injection", "labels", "logs", "projects")

__all__ = [*_MODULES, *_EXPORTS, *_RENAMED, "UpOptions", "up", "wait_condition"]

# Eager: importing the submodule `up` sets the package's attribute `up` to that module, which
# would hide a lazily loaded function of the same name.
from .up import UpOptions, up, wait_condition  # noqa: E402


def __getattr__(name: str):
    import importlib

    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module, attr = _RENAMED.get(name) or (_EXPORTS.get(name), name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value
