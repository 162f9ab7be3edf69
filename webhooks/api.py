"""Operator JSON API under `/api/` (bearer token): events and messages with their timelines."""

from __future__ import annotations

import time
from typing import Any

import phonenumbers
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
    event["messages"] = [with_callbacks(m) for m in
                         (store.get_message(mid) for mid in store.event_message_ids(event_id)) if m]
    return jsonify(event)


def with_callbacks(message: dict[str, Any]) -> dict[str, Any]:
    """The message with its callbacks and their attempts."""
    store = runtime().store
    message["callbacks"] = [c for c in (store.get_callback(cid) for cid in store.message_callback_ids(message["id"]))
                            if c]
    return message


@bp.get("/messages/<message_id>")
@require_token
def get_message(message_id: str) -> ResponseReturnValue:
    """One message with its timeline."""
    message = runtime().store.get_message(message_id)
    if message is None:
        return error(404, "not_found", f"no message {message_id}")
    return jsonify(with_callbacks(message))


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


@bp.get("/optouts")
@require_token
def list_optouts() -> ResponseReturnValue:
    """The suppression list."""
    return jsonify(runtime().store.optouts())


@bp.post("/optouts")
@require_token
def add_optout() -> ResponseReturnValue:
    """Suppress a number: `{"number": "+61…", "note": "…"}`."""
    body = request.get_json(silent=True) or {}
    number = normalise(str(body.get("number") or ""))
    if number is None:
        return error(422, "invalid_number", "number must be a valid phone number (E.164 preferred)")
    runtime().store.opt_out(number, time.time(), via="operator", detail=str(body.get("note") or "")[:200])
    return jsonify({"number": number, "opted_out": True}), 201


@bp.delete("/optouts/<number>")
@require_token
def remove_optout(number: str) -> ResponseReturnValue:
    """Lift a suppression."""
    e164 = normalise(number)
    if e164 is None or not runtime().store.opt_in(e164):
        return error(404, "not_found", "that number is not on the suppression list")
    return jsonify({"number": e164, "opted_out": False})


def normalise(number: str) -> str | None:
    """E.164 for `number` in the default region, or None when it is not a valid number."""
    try:
        parsed = phonenumbers.parse(number, runtime().settings.default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
