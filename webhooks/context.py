"""Access to the process runtime from inside a request, and the JSON error reply."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from workers.runtime import Runtime


def runtime() -> Runtime:
    """The runtime this app was built with."""
    return current_app.extensions["hookline"]


def error(status: int, code: str, message: str, **extra: object) -> ResponseReturnValue:
    """The one error shape: `{"error": code, "message": text}` with the status."""
    return jsonify({"error": code, "message": message, **extra}), status


def json_object() -> dict[str, Any]:
    """The request's JSON body when it is an object; {} for no body, bad JSON, or any other JSON value."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}
