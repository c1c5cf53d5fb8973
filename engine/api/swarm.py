"""Swarm-mode routes on a daemon that is never in a swarm: dockerd's answers when it is not
part of one (503), which docker-py and the docker CLI read as "no swarm here"."""

from __future__ import annotations

from engine import errors
from engine.api._request import Request
from engine.api._router import Router

router = Router()

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)
NOT_IN_A_SWARM = "This node is not part of a swarm"
NO_SWARM_MODE = "pyengine does not support swarm mode: this node cannot init or join a swarm"

# The swarm-only resources: every route under them answers as a non-manager does.
MANAGER_RESOURCES = ("/nodes", "/services", "/tasks", "/secrets", "/configs")
METHODS = ("GET", "POST", "PUT", "DELETE")


async def not_a_manager(req: Request):
    raise errors.Unavailable(NOT_A_MANAGER)


async def not_in_a_swarm(req: Request):
    raise errors.Unavailable(NOT_IN_A_SWARM)


async def no_swarm_mode(req: Request):
    raise errors.Unavailable(NO_SWARM_MODE)


for _method in METHODS:
    for _resource in MANAGER_RESOURCES:
        router.add(_method, _resource, not_a_manager)
        router.add(_method, _resource + "/{rest:path}", not_a_manager)
    router.add(_method, "/swarm", not_a_manager)

router.add("POST", "/swarm/leave", not_in_a_swarm)
for _path in ("/swarm/init", "/swarm/join"):
    router.add("POST", _path, no_swarm_mode)
for _method, _path in (("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock")):
    router.add(_method, _path, not_a_manager)
