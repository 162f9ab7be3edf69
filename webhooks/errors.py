"""HTTP error handlers: every error the edge answers is JSON `{"error": code, "message": text}`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from webhooks.context import error
from workers.errors import IngestError, NotReplicated, PayloadInvalid, StoreUnavailable

log = logging.getLogger("hookline.web")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    403: "forbidden",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "unprocessable",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


def code_for(status: int) -> str:
    """The `error` code answered with `status` (the app's handlers and the server's own error answers)."""
    return _CODES.get(status, "error")


def ingest_refusal(exc: IngestError) -> tuple[int, dict[str, Any]]:
    """The status and JSON body answering a refused webhook (a payload's schema errors listed)."""
    extra = {"errors": exc.errors} if isinstance(exc, PayloadInvalid) and exc.errors else {}
    return exc.status, {"error": exc.code, "message": exc.message, **extra}


def store_refusal(exc: StoreUnavailable) -> tuple[int, dict[str, Any]]:
    """The status and JSON body when Redis could not be reached (logged: the operator must hear of it)."""
    log.error("redis unavailable: %s", exc)
    if isinstance(exc, NotReplicated):  # stored on the primary, maybe: a retry of it is answered as a duplicate
        return 503, {"error": "unavailable", "message": "not yet on a replica, so not accepted; try again"}
    return 503, {"error": "unavailable", "message": "storage unavailable; nothing was stored, try again"}


def init_app(app: Flask) -> None:
    """Install the JSON error handlers on `app`."""

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = f"body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        return error(status, code_for(status), message)

    @app.errorhandler(IngestError)
    def _ingest(exc: IngestError) -> ResponseReturnValue:
        status, body = ingest_refusal(exc)
        return body, status

    @app.errorhandler(StoreUnavailable)
    def _store(exc: StoreUnavailable) -> ResponseReturnValue:
        status, body = store_refusal(exc)
        return body, status
