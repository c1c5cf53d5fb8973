"""The engine's error hierarchy. The API maps these to HTTP statuses in one place
(engine/api/_errors.py); managers and drivers raise them and never think about HTTP."""


class EngineError(Exception):
    """Base of every error the engine reports to a client."""

    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidParameter(EngineError):
    """The request is malformed or names an unsupported option (400)."""

    status = 400


class Unauthorized(EngineError):
    status = 401


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    """The object named does not exist (404)."""

    status = 404


class Conflict(EngineError):
    """The object is in a state that forbids the operation, or the name is taken (409)."""

    status = 409


class NotModified(EngineError):
    """Nothing to do: already started / already stopped (304)."""

    status = 304


class SystemError_(EngineError):
    """Something failed inside the engine or the kernel (500)."""

    status = 500


class Unavailable(EngineError):
    status = 503


class NotSupported(EngineError):
    """A Docker feature pyengine does not implement (501), named in the message."""

    status = 501


def no_such_container(ref: str) -> NotFound:
    return NotFound(f"No such container: {ref}")


def no_such_image(ref: str) -> NotFound:
    return NotFound(f"No such image: {ref}")


def no_such_exec(ref: str) -> NotFound:
    return NotFound(f"No such exec instance: {ref}")
