"""Access to the process runtime from inside a request, and the JSON error reply."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from workers.core.events import decode_json
from workers.wiring.runtime import Runtime


def runtime() -> Runtime:
    """The runtime this app was built with."""
    return current_app.extensions["hookline"]


def error(status: int, code: str, message: str, **extra: object) -> ResponseReturnValue:
    """The one error shape: `{"error": code, "message": text}` with the status."""
    return jsonify({"error": code, "message": message, **extra}), status


def json_object() -> dict[str, Any]:
    """The request's JSON body when it is an object; {} for no body, bad JSON (too deep included), any other
    JSON value, or a body that is not declared as JSON."""
    if not request.is_json:
        return {}
    try:
        body = decode_json(request.get_data(cache=True))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
