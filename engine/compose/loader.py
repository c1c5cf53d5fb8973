"""Load a project: find the files, read `.env`, interpolate, validate each file against the
schema, merge (-f order), resolve `extends`, apply profiles and normalize services."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import cache, schema
from .containerspec import service_sources
from .envfile import read_env_file
from .errors import ConfigError, NoConfigFile
from .interpolation import interpolate
from .merge import merge_documents, merge_service, normalize_service
from .model import CONDITIONS, Dependency, Project, Service
from .normalize import normalize_ports, normalize_volumes, resolve_paths

STDIN = "-"  # `-f -`: the file is read from standard input
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yml", "docker-compose.override.yaml")


@dataclass
class LoadOptions:
    files: list[str] = field(default_factory=list)
    project_name: str | None = None
    project_directory: str | None = None
    profiles: list[str] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    # services named on the command line: enabled whatever their profiles (as Compose does)
    targets: list[str] = field(default_factory=list)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: str = field(default_factory=os.getcwd)
    stdin: Callable[[], str] = lambda: sys.stdin.read()  # what `-f -` reads


def find_files(opts: LoadOptions) -> list[str]:
    """-f files (or COMPOSE_FILE), else the default file in the directory or a parent, plus
    its override file."""
    files = list(opts.files)
    if not files and opts.environ.get("COMPOSE_FILE"):
        sep = opts.environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        files = [f for f in opts.environ["COMPOSE_FILE"].split(sep) if f]
    if files:
        if files.count(STDIN) > 1:
            raise ConfigError("-f -: standard input can be read only once")
        return [f if f == STDIN else os.path.abspath(os.path.join(opts.cwd, f)) for f in files]
    directory = os.path.abspath(opts.cwd)
    while True:
        for name in DEFAULT_FILES:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                found = [path]
                for over in OVERRIDE_FILES:
                    if os.path.isfile(os.path.join(directory, over)):
                        found.append(os.path.join(directory, over))
                        break
                return found
        parent = os.path.dirname(directory)
        if parent == directory:
            raise NoConfigFile("no configuration file provided: not found "
                              f"(looked for {', '.join(DEFAULT_FILES)})")
        directory = parent


def _read_yaml(path: str, stdin: Callable[[], str] | None = None) -> Any:
    try:
        if path == STDIN and stdin is not None:
            text = stdin()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"open {path}: no such file or directory") from None
    return cache.parse_yaml(text, path)


def project_environment(opts: LoadOptions, project_dir: str) -> dict[str, str]:
    """Variables for interpolation: the `.env` file(s) overridden by the process env."""
    env: dict[str, str] = {}
    env_files = opts.env_files or []
    if not env_files:
        default = os.path.join(project_dir, ".env")
        env_files = [default] if os.path.isfile(default) else []
    for path in env_files:
        for k, v in read_env_file(os.path.join(opts.cwd, path)).items():
            if v is not None:
                env[k] = v
    env.update(opts.environ)
    return env


def normalize_project_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def _load_file(path: str, env: Mapping[str, str],
               stdin: Callable[[], str] | None = None) -> dict:
    raw = _read_yaml(path, stdin)
    if raw is None:
        raw = {}
    doc = interpolate(raw, env, path)
    schema.validate(doc, path)
    doc = dict(doc)
    doc["services"] = {name: normalize_service(svc or {})
                       for name, svc in (doc.get("services") or {}).items()}
    return doc


def _resolve_extends(name: str, services: dict[str, dict], base_dir: str,
                     env: Mapping[str, str], seen: tuple = ()) -> dict:
    svc = services[name]
    ext = svc.get("extends")
    if not ext:
        return svc
    if (base_dir, name) in seen:
        raise ConfigError(f"services.{name}.extends: circular reference")
    target = ext["service"]
    if ext.get("file"):
        path = os.path.join(base_dir, ext["file"])
        other = _load_file(path, env)
        other_dir = os.path.dirname(os.path.abspath(path))
        if target not in other["services"]:
            raise ConfigError(f"services.{name}.extends: no service {target!r} in {path}")
        base = _resolve_extends(target, other["services"], other_dir, env,
                                seen + ((base_dir, name),))
        base = resolve_paths(base, other_dir)
    else:
        if target not in services:
            raise ConfigError(f"services.{name}.extends: no such service {target!r}")
        base = _resolve_extends(target, services, base_dir, env, seen + ((base_dir, name),))
    base = {k: v for k, v in base.items() if k not in ("depends_on",)}
    own = {k: v for k, v in svc.items() if k != "extends"}
    return merge_service(base, own)


def _environment(svc: dict, env: Mapping[str, str], project_dir: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in svc.get("env_file") or []:
        entry = path if isinstance(path, dict) else {"path": path}
        full = os.path.join(project_dir, entry["path"])
        if not os.path.isfile(full) and entry.get("required") is False:
            continue
        for k, v in read_env_file(full).items():
            if v is None:
                v = env.get(k)
            if v is not None:
                out[k] = v
    for k, v in (svc.get("environment") or {}).items():
        if v is None:
            v = env.get(k)
            if v is None:
                continue
        out[k] = v
    return out


def _service(name: str, svc: dict, env: Mapping[str, str], project_dir: str) -> Service:
    svc = resolve_paths(svc, project_dir)
    svc["environment"] = _environment(svc, env, project_dir)
    svc.pop("env_file", None)
    svc["ports"] = normalize_ports(svc.get("ports") or [], f"services.{name}.ports")
    svc["volumes"] = normalize_volumes(svc.get("volumes") or [], f"services.{name}.volumes")
    if "network_mode" not in svc:
        nets = svc.get("networks") or {"default": None}
        svc["networks"] = {k: dict(v or {}) for k, v in nets.items()}
    if not svc.get("image") and not svc.get("build"):
        raise ConfigError(f"services.{name}: has neither an image nor a build context")
    deps = {}
    for dep, spec in (svc.get("depends_on") or {}).items():
        cond = spec.get("condition", "service_started")
        if cond not in CONDITIONS:
            raise ConfigError(f"services.{name}.depends_on.{dep}.condition: invalid {cond!r}")
        deps[dep] = Dependency(dep, cond, bool(spec.get("required", True)))
    deploy = svc.get("deploy") or {}
    scale = deploy.get("replicas", svc.get("scale", 1))
    try:
        scale = int(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"services.{name}.deploy.replicas: must be an integer") from None
    service = Service(name, svc, deps, scale)
    # implicit dependencies, as Compose has them: links, network_mode: service:X, volumes_from
    for dep in [str(link).split(":")[0] for link in svc.get("links") or []] + service_sources(service):
        deps.setdefault(dep, Dependency(dep))
    return service


def _check_references(project: Project) -> None:
    for svc in project.services.values():
        base = f"services.{svc.name}"
        for source in service_sources(svc):
            if source not in project.services:
                raise ConfigError(f"{base}: service {source!r} (network_mode or volumes_from) is undefined")
        for dep in svc.depends_on.values():
            if dep.service not in project.services and dep.required:
                where = "disabled by its profiles" if dep.service in project.disabled else \
                    "undefined"
                raise ConfigError(f"{base}.depends_on: service {dep.service!r} is {where}")
        for net in svc.networks:
            if net not in project.networks:
                raise ConfigError(f"{base}.networks: network {net!r} is undefined")
        for vol in svc.config["volumes"]:
            if vol["type"] == "volume" and vol.get("source") and \
                    vol["source"] not in project.volumes:
                raise ConfigError(f"{base}.volumes: named volume {vol['source']!r} is "
                                  "undefined (declare it under top-level volumes)")
        for kind in ("secrets", "configs"):
            for item in svc.config.get(kind) or []:
                source = item["source"] if isinstance(item, dict) else item
                if source not in getattr(project, kind):
                    raise ConfigError(f"{base}.{kind}: {kind[:-1]} {source!r} is undefined")
    _check_cycles(project)


def _check_cycles(project: Project) -> None:
    state: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ConfigError("dependency cycle: " + " -> ".join(chain + [name]))
        state[name] = 1
        for dep in project.services[name].depends_on:
            if dep in project.services:
                visit(dep, chain + [name])
        state[name] = 2

    for name in project.services:
        visit(name, [])


def empty_project(name: str, cwd: str) -> Project:
    """A project known only by name (no file): enough for commands that find everything by
    label (`-p NAME down`, ps, logs…), as Docker Compose allows."""
    return Project(name=normalize_project_name(name), working_dir=cwd, config_files=[],
                   services={})


def load_project(opts: LoadOptions) -> Project:
    files = find_files(opts)
    # from standard input, paths in the file are relative to the current directory
    first_dir = opts.cwd if files[0] == STDIN else os.path.dirname(files[0])
    project_dir = os.path.abspath(opts.project_directory or first_dir)
    env = project_environment(opts, project_dir)
    merged: dict = {}
    for path in files:
        merged = merge_documents(merged, _load_file(path, env, opts.stdin))
    services = merged.get("services") or {}
    if not services:
        raise ConfigError("no service defined in " + ", ".join(files))
    resolved = {n: _resolve_extends(n, services, project_dir, env) for n in services}

    name = opts.project_name or env.get("COMPOSE_PROJECT_NAME") or merged.get("name") or \
        os.path.basename(project_dir)
    name = normalize_project_name(name)
    if not name:
        raise ConfigError("project name must contain a letter or digit; use -p NAME")

    profiles = set(opts.profiles)
    if not profiles and env.get("COMPOSE_PROFILES"):
        profiles = {p for p in env["COMPOSE_PROFILES"].split(",") if p}
    enabled, disabled = {}, {}
    for n, svc in resolved.items():
        model = _service(n, svc, env, project_dir)
        wanted = svc.get("profiles")
        if wanted and not (profiles & set(wanted)) and "*" not in profiles and \
                n not in opts.targets:
            disabled[n] = model
        else:
            enabled[n] = model

    networks = {k: dict(v or {}) for k, v in (merged.get("networks") or {}).items()}
    if any("default" in s.networks for s in enabled.values()):
        networks.setdefault("default", {})
    project = Project(
        name=name, working_dir=project_dir, config_files=files, services=enabled,
        networks=networks,
        volumes={k: dict(v or {}) for k, v in (merged.get("volumes") or {}).items()},
        secrets=_file_objects(merged.get("secrets"), project_dir, "secrets", env),
        configs=_file_objects(merged.get("configs"), project_dir, "configs", env),
        disabled=disabled,
    )
    _check_references(project)
    return project


def _file_objects(items: dict | None, project_dir: str, kind: str,
                  env: Mapping[str, str]) -> dict[str, dict]:
    """Top-level secrets/configs: `file:` made absolute (`environment:` kept by name)."""
    out = {}
    for key, spec in (items or {}).items():
        spec = dict(spec or {})
        if spec.get("file"):
            spec["file"] = os.path.normpath(os.path.join(project_dir,
                                                         os.path.expanduser(spec["file"])))
        elif spec.get("environment"):
            # unset: an error only for a service that uses it, when it is created
            spec["content"] = env.get(spec["environment"])
        elif kind == "configs" and "content" in spec:
            pass
        elif not spec.get("external"):
            extra = ", `environment` or `content`" if kind == "configs" else " or `environment`"
            raise ConfigError(f"{kind}.{key}: needs `file`{extra} (external {kind} need a "
                              "swarm)")
        out[key] = spec
    return out
