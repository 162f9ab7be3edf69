"""Operator JSON API under `/api/` (bearer token): events and messages with their timelines."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from webhooks.auth import require_token
from webhooks.context import error, json_object, runtime
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.core.phones import e164
from workers.tools.trace import mask
from workers.wiring.handover import Verdict, decide

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/events/<event_id>")
@require_token
def get_event(event_id: str) -> ResponseReturnValue:
    """The stored event with its processing status and its messages, each with its timeline."""
    store = runtime().store
    record = store.events.get_event(event_id)
    if record is None:
        return error(404, "not_found", f"no event {event_id}")
    found = (store.messages.get_message(mid) for mid in store.messages.event_message_ids(event_id))
    return jsonify(record.to_json() | {"messages": [with_callbacks(m) for m in found if m]})


def with_callbacks(message: Message) -> dict[str, Any]:
    """The message as JSON with its callbacks and their attempts."""
    store = runtime().store
    ids = store.callbacks.message_callback_ids(message.id)
    return message.to_json() | {"callbacks": [c.to_json() for c in map(store.callbacks.get_callback, ids) if c]}


@bp.get("/messages/<message_id>")
@require_token
def get_message(message_id: str) -> ResponseReturnValue:
    """One message with its timeline."""
    message = runtime().store.messages.get_message(message_id)
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
    ids = store.messages.messages_in_state(state, limit=limit)
    return jsonify({"state": state.value, "messages": [m.to_json() for m in store.messages.get_messages(ids) if m]})


@bp.get("/optouts")
@require_token
def list_optouts() -> ResponseReturnValue:
    """The suppression list."""
    return jsonify(runtime().store.optouts.optouts())


@bp.post("/optouts")
@require_token
def add_optout() -> ResponseReturnValue:
    """Suppress a number: `{"number": "+61…", "note": "…"}`."""
    body = json_object()
    number = normalise(str(body.get("number") or ""))
    if number is None:
        return error(422, "invalid_number", "number must be a valid phone number (E.164 preferred)")
    runtime().store.optouts.opt_out(number, time.time(), via="operator", detail=str(body.get("note") or "")[:200])
    return jsonify({"number": number, "opted_out": True}), 201


@bp.delete("/optouts/<number>")
@require_token
def remove_optout(number: str) -> ResponseReturnValue:
    """Lift a suppression."""
    e164 = normalise(number)
    if e164 is None or not runtime().store.optouts.opt_in(e164):
        return error(404, "not_found", "that number is not on the suppression list")
    return jsonify({"number": e164, "opted_out": False})


def normalise(number: str) -> str | None:
    """E.164 for `number` in the default region, or None when it is not a valid number."""
    return e164(number, runtime().settings.default_region)


def _approval_view(msg: Message) -> dict[str, Any]:
    """What a person needs to decide: the rendered body, a masked recipient, cost, and why it was held."""
    held_reasons = [t.get("reason") for t in msg.timeline if t.get("to") == "held"]
    return {"id": msg.id, "event_id": msg.event_id, "rule": msg.rule, "channel": msg.channel, "to": mask(msg.to),
            "body": msg.body, "segments": msg.segments, "encoding": msg.encoding,
            "estimate": str(msg.estimate) if msg.estimate is not None else None, "send_at": msg.send_at,
            "held_at": msg.updated_at, "reasons": held_reasons[-1:] or list(msg.reasons), "facts": dict(msg.facts)}


@bp.get("/approvals")
@require_token
def list_approvals() -> ResponseReturnValue:
    """Held messages waiting for a person (`?rule=` or `?event_id=` to narrow)."""
    rt = runtime()
    docs = rt.store.messages.held(request.args.get("rule"), request.args.get("event_id"))
    full = [rt.store.messages.get_message(d.id) or d for d in docs]
    return jsonify({"approvals": [_approval_view(m) for m in full]})


@bp.post("/approvals/<message_id>/<action>")
@require_token
def decide_one(message_id: str, action: str) -> ResponseReturnValue:
    """Approve or reject one held message, with an optional note; `by` names who decided."""
    return _decide([message_id], action)


@bp.post("/approvals/<action>")
@require_token
def decide_bulk(action: str) -> ResponseReturnValue:
    """Approve or reject every held message of a rule or an event: `{"rule": …}` or `{"event_id": …}`."""
    body = json_object()
    if not body.get("rule") and not body.get("event_id") and not body.get("ids"):
        return error(400, "bad_request", "give rule, event_id or ids")
    given = body.get("ids") or []
    if not isinstance(given, list) or not all(isinstance(i, str) for i in given):
        return error(400, "bad_request", "ids must be a list of message ids")
    ids = list(given) or [m.id for m in runtime().store.messages.held(body.get("rule"), body.get("event_id"))]
    return _decide(ids, action)


def _decide(ids: list[str], action: str) -> ResponseReturnValue:
    if action not in ("approve", "reject"):
        return error(404, "not_found", "use approve or reject")
    body = json_object()
    by = str(body.get("by") or request.headers.get("X-Hookline-User") or "api")[:80]
    note = str(body.get("note") or "")[:500]
    rt = runtime()
    results = decide(rt.store, rt.enqueuer, ids, Verdict(action), by, note, time.time())
    ok = all(r in ("approved", "rejected") for r in results.values())
    return jsonify({"results": results}), 200 if ok or len(ids) > 1 else 409
