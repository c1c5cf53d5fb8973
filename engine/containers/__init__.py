"""Containers: records, lifecycle, supervision. The typed container spec (what engine.api
builds from Docker's JSON, and what the managers below it take) is re-exported here."""

from engine.containers.spec import (
    Bind,
    ContainerConfig,
    DeviceLimit,
    DeviceMapping,
    ExecConfig,
    HealthConfig,
    HostConfig,
    LogConfig,
    Mount,
    PortBinding,
    ResourceLimits,
    RestartPolicy,
    Ulimit,
    VolumeDriverConfig,
)

__all__ = [
    "Bind", "ContainerConfig", "DeviceLimit", "DeviceMapping", "ExecConfig", "HealthConfig", "HostConfig",
    "LogConfig", "Mount", "PortBinding", "ResourceLimits", "RestartPolicy", "Ulimit", "VolumeDriverConfig",
]
