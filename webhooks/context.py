"""Access to the process runtime from inside a request, and the JSON error reply."""

from __future__ import annotations

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from workers.runtime import Runtime


def runtime() -> Runtime:
    """The runtime this app was built with."""
    return current_app.extensions["hookline"]


def error(status: int, code: str, message: str, **extra: object) -> ResponseReturnValue:
    """The one error shape: `{"error": code, "message": text}` with the status."""
    return jsonify({"error": code, "message": message, **extra}), status
