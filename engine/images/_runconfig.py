"""What a container takes from its image: the image config's "config" section (Docker's
image format: Entrypoint, Cmd, Env, …), read once into a typed RunConfig, so the container
manager merges attributes rather than Docker's spelling."""

from __future__ import annotations

import attrs


@attrs.frozen
class ImageHealthcheck:
    """The image's HEALTHCHECK (zero durations/retries: the defaults)."""

    test: tuple[str, ...] = ()
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    retries: int = 0


@attrs.frozen
class RunConfig:
    """An image's defaults for its containers (empty values: the image sets none)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    labels: dict[str, str] = attrs.Factory(dict)
    user: str = ""
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()  # container paths
    healthcheck: ImageHealthcheck | None = None
    shell: tuple[str, ...] = ()
    stop_signal: str = ""

    @classmethod
    def from_json(cls, section: dict | None) -> RunConfig:
        """The image config's "config" section (null or missing fields: none set)."""
        section = section or {}
        health = section.get("Healthcheck")
        return cls(
            entrypoint=tuple(section.get("Entrypoint") or ()), cmd=tuple(section.get("Cmd") or ()),
            env=tuple(section.get("Env") or ()), labels=dict(section.get("Labels") or {}),
            user=section.get("User") or "", working_dir=section.get("WorkingDir") or "",
            exposed_ports=tuple(section.get("ExposedPorts") or ()), volumes=tuple(section.get("Volumes") or ()),
            healthcheck=ImageHealthcheck(
                test=tuple(health.get("Test") or ()), interval_ns=int(health.get("Interval") or 0),
                timeout_ns=int(health.get("Timeout") or 0), start_period_ns=int(health.get("StartPeriod") or 0),
                retries=int(health.get("Retries") or 0)) if health else None,
            shell=tuple(section.get("Shell") or ()), stop_signal=section.get("StopSignal") or "",
        )
