"""Volumes: manager, driver protocol, local driver, Docker volume plugin adapter."""

from engine.volumes.manager import VolumeManager, copy_up
from engine.volumes.model import MountPoint, Volume

__all__ = ["MountPoint", "Volume", "VolumeManager", "copy_up"]
