"""Operator JSON API under `/api/` (bearer token): events and messages with their timelines."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from webhooks.auth import require_token
from webhooks.context import error, runtime
from workers.core.lifecycle import State

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/events/<event_id>")
@require_token
def get_event(event_id: str) -> ResponseReturnValue:
    """The stored event with its processing status and its messages, each with its timeline."""
    store = runtime().store
    event = store.get_event(event_id)
    if event is None:
        return error(404, "not_found", f"no event {event_id}")
    event["messages"] = [m for m in (store.get_message(mid) for mid in store.event_message_ids(event_id)) if m]
    return jsonify(event)


@bp.get("/messages/<message_id>")
@require_token
def get_message(message_id: str) -> ResponseReturnValue:
    """One message with its timeline."""
    message = runtime().store.get_message(message_id)
    if message is None:
        return error(404, "not_found", f"no message {message_id}")
    return jsonify(message)


@bp.get("/messages")
@require_token
def list_messages() -> ResponseReturnValue:
    """Messages in a state (`?state=held`), oldest first, at most `limit` (default 100, at most 1000)."""
    state_name = request.args.get("state", "")
    try:
        state = State(state_name)
    except ValueError:
        return error(400, "bad_request", f"state must be one of: {', '.join(s.value for s in State)}")
    try:
        limit = min(1000, max(1, int(request.args.get("limit", "100"))))
    except ValueError:
        return error(400, "bad_request", "limit must be a whole number")
    store = runtime().store
    ids = store.messages_in_state(state, limit=limit)
    return jsonify({"state": state.value, "messages": [m for m in store.get_messages(ids) if m]})
