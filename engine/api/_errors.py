"""The ONE place where errors become HTTP responses.

engine.errors.EngineError subclasses → `{"message": …}` with their `.status` (304: no body);
anything else → 500 with the message, logged with its traceback."""

from __future__ import annotations

import logging

from engine.errors import EngineError, InvalidParameter, NotFound

from ._responses import Response, empty, json_response

__all__ = ["error_response", "page_not_found"]

log = logging.getLogger("engine.api")


class PayloadTooLarge(EngineError):
    status = 413


def page_not_found() -> NotFound:
    return NotFound("page not found")


def error_response(exc: BaseException, where: str = "") -> Response:
    if isinstance(exc, EngineError):
        if exc.status == 304:
            return empty(304)
        if exc.status >= 500:
            log.error("%s: %s", where or "request", exc.message)
        return json_response({"message": exc.message}, exc.status)
    log.error("unhandled error in %s", where or "request", exc_info=exc)
    message = str(exc) or type(exc).__name__
    return json_response({"message": message}, 500)


__all__ += ["InvalidParameter", "PayloadTooLarge"]
