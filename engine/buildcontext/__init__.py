"""Build contexts as Docker defines them: .dockerignore matching and the context tar a client
sends to POST /build. Pure file work importing nothing of the daemon, so that the builder
(engine.build, in the daemon) and the API clients (the pyengine CLI, compose) share one
implementation of Docker's rules."""

from ._dockerignore import DockerIgnore, read_patterns
from ._pack import pack_context

__all__ = ["DockerIgnore", "pack_context", "read_patterns"]
