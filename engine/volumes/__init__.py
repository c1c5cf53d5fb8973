"""Volumes: manager, driver protocol, local driver, Docker volume plugin adapter."""

from engine.volumes.manager import VolumeManager, copy_up
from engine.volumes.model import MountPoint, PruneReport, Volume, VolumeStatus

__all__ = ["MountPoint", "PruneReport", "Volume", "VolumeManager", "VolumeStatus", "copy_up"]
