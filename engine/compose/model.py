"""The loaded project: services with one normalized shape per key, and the top-level
networks/volumes/secrets/configs, named as Docker Compose names them on the daemon."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


@dataclass(frozen=True)
class Dependency:
    service: str
    condition: str = "service_started"
    required: bool = True


@dataclass(eq=False)
class Service:
    """One service. `config` is the merged, interpolated, normalized mapping: `environment`
    is a resolved dict, `ports`/`volumes` are in long form, paths are absolute."""

    name: str
    config: dict[str, Any]
    depends_on: dict[str, Dependency] = field(default_factory=dict)
    scale: int = 1

    @property
    def image(self) -> str | None:
        return self.config.get("image")

    @property
    def build(self) -> dict | None:
        return self.config.get("build")

    @property
    def networks(self) -> dict[str, dict]:
        """network key -> {aliases, ipv4_address…}; empty under network_mode."""
        return self.config.get("networks") or {}

    @property
    def config_hash(self) -> str:
        """What decides whether a container must be recreated (Docker Compose's
        com.docker.compose.config-hash): the container-shaping config, not scale or build."""
        cfg = {k: v for k, v in self.config.items()
               if k not in ("scale", "build", "pull_policy", "profiles", "depends_on")}
        deploy = dict(cfg.get("deploy") or {})
        deploy.pop("replicas", None)
        cfg["deploy"] = deploy
        text = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(eq=False)
class Project:
    name: str
    working_dir: str
    config_files: list[str]
    services: dict[str, Service]
    networks: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict] = field(default_factory=dict)
    secrets: dict[str, dict] = field(default_factory=dict)
    configs: dict[str, dict] = field(default_factory=dict)
    # services left out by --profile (kept so that orphans are not misjudged)
    disabled: dict[str, Service] = field(default_factory=dict)

    def network_name(self, key: str) -> str:
        net = self.networks.get(key) or {}
        if net.get("name"):
            return net["name"]
        if net.get("external"):
            return key
        return f"{self.name}_{key}"

    def volume_name(self, key: str) -> str:
        vol = self.volumes.get(key) or {}
        if vol.get("name"):
            return vol["name"]
        if vol.get("external"):
            return key
        return f"{self.name}_{key}"

    def image_name(self, service: Service) -> str:
        """The image a service runs: its `image:`, else the one `build:` makes."""
        return service.image or f"{self.name}-{service.name}"

    def container_name(self, service: Service, number: int) -> str:
        return service.config.get("container_name") or f"{self.name}-{service.name}-{number}"

    def select(self, names: list[str] | None, with_deps: bool = True) -> list[str]:
        """The named services (all when empty) plus, unless told not to, what they depend
        on; unknown names are an error."""
        if not names:
            return list(self.services)
        for n in names:
            if n not in self.services:
                if n in self.disabled:
                    raise ConfigError(f"service {n!r} is disabled by its profiles")
                raise ConfigError(f"no such service: {n}")
        out: list[str] = []

        def visit(n: str) -> None:
            if n in out:
                return
            if with_deps:
                for dep in self.services[n].depends_on:
                    if dep in self.services:
                        visit(dep)
            out.append(n)

        for n in names:
            visit(n)
        return out
