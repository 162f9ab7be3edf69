"""Operator JSON API under `/api/` (bearer token): event records and, later, messages and approvals."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from webhooks.auth import require_token
from webhooks.context import error, runtime

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/events/<event_id>")
@require_token
def get_event(event_id: str) -> ResponseReturnValue:
    """The stored event with its processing status."""
    event = runtime().store.get_event(event_id)
    if event is None:
        return error(404, "not_found", f"no event {event_id}")
    return jsonify(event)
