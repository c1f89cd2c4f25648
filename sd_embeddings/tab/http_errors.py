"""Every answer of the extension's routes is JSON text, and every failure a status with a one-line reason.

- ``SafeJSONResponse``: JSON whose text is always valid UTF-8 (lone surrogates from non-UTF-8 file names become
  U+FFFD, see ``names``); the routes' default response class.
- ``GuardedRoute``: the routes' ``APIRoute`` class. An exception that escapes a handler becomes an answer here, on
  our routes only (the host's other routes keep their own handling): disk errors (the library's ``WriteError``,
  or a bare ``OSError``) say what happened (a name too long 400, a read-only folder 403, a full disk 507), a bad
  embedding file 422 with its reason, anything else 500 with a one-line reason and a log line with the traceback
  (never a traceback in the body). Every answer, refusals included, says no other site may frame it
  (``framing``).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from ..errors import EmbeddingError, WriteError
from ..formats.logs import get_logger
from ..library.containment import OutsideError
from . import framing
from .names import shown

logger = get_logger(__name__)

# errno -> (status, what happened); EACCES/EPERM: the folder (or file) cannot be written by this process
DISK_ERRORS: dict[int, tuple[int, str]] = {
    errno.ENAMETOOLONG: (400, "file name too long for this file system"),
    errno.EROFS: (403, "folder is read-only"),
    errno.EACCES: (403, "folder is read-only (permission denied)"),
    errno.EPERM: (403, "folder is read-only (operation not permitted)"),
    errno.ENOSPC: (507, "disk full"),
    errno.EDQUOT: (507, "disk full (quota exceeded)"),
    errno.EISDIR: (409, "a folder of that name is in the way"),
}
# ``errors.WriteError.kind`` -> the errno whose answer it gets
WRITE_KINDS: dict[str, int] = {"name-too-long": errno.ENAMETOOLONG, "read-only": errno.EROFS,
                               "disk-full": errno.ENOSPC, "not-a-file": errno.EISDIR}


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return shown(text).encode("utf-8")


def _one_line(text: str) -> str:
    return " ".join(shown(str(text)).split())[:300]


def _disk_error(error: BaseException) -> tuple[int, str] | None:
    """(status, reason) for a disk error anywhere in the exception's chain, else None."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, WriteError) and error.kind == "outside":  # a folder linked out of the embeddings folder
            return 400, error.reason
        if isinstance(error, OutsideError):
            return 400, f"not changed: {error.reason}"
        if isinstance(error, WriteError) and error.kind in WRITE_KINDS:
            status = DISK_ERRORS[WRITE_KINDS[error.kind]][0]
            return status, f"{error.reason}: {os.path.basename(error.path)}"
        if isinstance(error, OSError) and error.errno in DISK_ERRORS:
            status, what = DISK_ERRORS[error.errno]
            name = error.filename
            return status, f"{what}: {os.path.basename(os.fsdecode(name))}" if name else what
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def error_response(error: Exception, request: Request) -> Response:
    disk = _disk_error(error)
    if disk is not None:
        status, reason = disk
        logger.warning("%s %s: %s", request.method, request.url.path, reason)
    elif isinstance(error, EmbeddingError):
        status, reason = 422, error.reason
        logger.warning("%s %s: %s", request.method, request.url.path, error)
    else:
        status, reason = 500, f"internal error ({type(error).__name__}); see the host's log"
        logger.exception("%s %s failed", request.method, request.url.path)
    return SafeJSONResponse({"detail": _one_line(reason)}, status_code=status)


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as refusal:  # answered by the app's handler, with these headers
                refusal.headers = {**(refusal.headers or {}), **framing.HEADERS}
                raise
            except RequestValidationError:
                raise
            except Exception as error:  # one request's failure is that request's answer, never a bare 500
                response = error_response(error, request)
            framing.frame_headers(response.headers)
            return response

        return guarded
