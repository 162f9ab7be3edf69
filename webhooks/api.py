"""Operator JSON API under `/api/` (bearer token): events and messages listed and one by one with their
timelines, approvals, the suppression list, and the OpenAPI document of the whole surface.

Answers go through `webhooks.schemas` (times ISO-8601, numbers masked unless `reveal=1`); listings come from
the store's typed pages. Unknown ids are 404 in the error shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema
from werkzeug.exceptions import BadRequest

from webhooks import openapi
from webhooks import schemas as sc
from webhooks.auth import require_token
from webhooks.context import error, json_object, runtime
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.core.phones import e164
from workers.core.records import EventRecord
from workers.store.events import EventQuery
from workers.store.messages import MessageQuery
from workers.store.pages import Page, Position
from workers.wiring.handover import Verdict, decide

bp = Blueprint("api", __name__, url_prefix="/api")
_DECISION = "<any(approve, reject):action>"


def args(schema: type[Schema]) -> dict[str, Any]:
    """The query string read with `schema`; a 400 `bad_request` naming each problem when it does not fit."""
    try:
        return sc.load_args(schema, request.args)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _after(cursor: str | None) -> Position | None:
    try:
        return Position.from_cursor(cursor) if cursor else None
    except ValueError as exc:
        raise BadRequest(f"cursor: {exc}") from None


def _unix(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def _page(name: str, schema: type[Schema], page: Page[Any], to_json: Callable[[Any], dict[str, Any]],
          reveal: bool) -> ResponseReturnValue:
    body = {name: [to_json(item) for item in page.items], "next": page.next.cursor() if page.next else None}
    return jsonify(sc.dump(schema, body, reveal))


@bp.get("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of the HTTP surface (no token needed: it holds no data)."""
    cached = current_app.extensions.get("hookline.openapi")
    if cached is None:
        cached = current_app.extensions["hookline.openapi"] = openapi.build(current_app)
    return jsonify(cached)


@bp.get("/events")
@require_token
def list_events() -> ResponseReturnValue:
    """Events newest first, filtered by source, type, status, rule, received time or id (`q`), paged."""
    a = args(sc.EventListArgs)
    query = EventQuery(a.get("source"), a.get("type"), a.get("status"), a.get("rule"), _unix(a.get("since")),
                       _unix(a.get("until")), a.get("q"), a["limit"], _after(a.get("cursor")))
    return _page("events", sc.EventPage, runtime().store.events.list_events(query), _event_json, a["reveal"])


def _event_json(record: EventRecord) -> dict[str, Any]:
    """The record as JSON with its count of planned messages as `planned` (`messages` lists them in detail)."""
    doc = record.to_json()
    if "messages" in doc:
        doc["planned"] = doc.pop("messages")
    return doc


@bp.get("/events/<event_id>")
@require_token
def get_event(event_id: str) -> ResponseReturnValue:
    """The stored event with its processing status and its messages, each with its timeline."""
    reveal = args(sc.RevealArgs)["reveal"]
    store = runtime().store
    record = store.events.get_event(event_id)
    if record is None:
        return error(404, "not_found", f"no event {event_id}")
    found = (store.messages.get_message(mid) for mid in store.messages.event_message_ids(event_id))
    detail = _event_json(record) | {"messages": [with_callbacks(m) for m in found if m]}
    return jsonify(sc.dump(sc.EventDetail, detail, reveal))


def with_callbacks(message: Message) -> dict[str, Any]:
    """The message as JSON with its callbacks and their attempts."""
    store = runtime().store
    ids = store.callbacks.message_callback_ids(message.id)
    return message.to_json() | {"callbacks": [c.to_json() for c in map(store.callbacks.get_callback, ids) if c]}


@bp.get("/messages/<message_id>")
@require_token
def get_message(message_id: str) -> ResponseReturnValue:
    """One message with its timeline and callbacks."""
    reveal = args(sc.RevealArgs)["reveal"]
    message = runtime().store.messages.get_message(message_id)
    if message is None:
        return error(404, "not_found", f"no message {message_id}")
    return jsonify(sc.dump(sc.MessageDetail, with_callbacks(message), reveal))


@bp.get("/messages")
@require_token
def list_messages() -> ResponseReturnValue:
    """Messages newest change first, filtered by state, channel, rule, event, source, time in that state or id
    (`q`), paged."""
    a = args(sc.MessageListArgs)
    store = runtime().store
    query = MessageQuery(state=State(a["state"]) if a.get("state") else None, channel=a.get("channel"),
                         rule=a.get("rule"), event_id=a.get("event_id"), source=a.get("source"),
                         ids=store.search_messages(a["q"]) if a.get("q") else None, since=_unix(a.get("since")),
                         until=_unix(a.get("until")), limit=a["limit"], after=_after(a.get("cursor")))
    return _page("messages", sc.MessagePage, store.messages.list_messages(query), Message.to_json, a["reveal"])


@bp.get("/optouts")
@require_token
def list_optouts() -> ResponseReturnValue:
    """The suppression list, by number."""
    reveal = args(sc.RevealArgs)["reveal"]
    listed = [{"number": n} | info for n, info in sorted(runtime().store.optouts.optouts().items())]
    return jsonify(sc.dump(sc.Optouts, {"optouts": listed}, reveal))


@bp.post("/optouts")
@require_token
def add_optout() -> ResponseReturnValue:
    """Suppress a number: `{"number": "+61…", "note": "…"}`."""
    reveal = args(sc.RevealArgs)["reveal"]
    body = json_object()
    number = normalise(str(body.get("number") or ""))
    if number is None:
        return error(422, "invalid_number", "number must be a valid phone number (E.164 preferred)")
    runtime().store.optouts.opt_out(number, time.time(), via="operator", detail=str(body.get("note") or "")[:200])
    return jsonify(sc.dump(sc.OptoutChange, {"number": number, "opted_out": True}, reveal)), 201


@bp.delete("/optouts/<number>")
@require_token
def remove_optout(number: str) -> ResponseReturnValue:
    """Lift a suppression."""
    reveal = args(sc.RevealArgs)["reveal"]
    e164 = normalise(number)
    if e164 is None or not runtime().store.optouts.opt_in(e164):
        return error(404, "not_found", "that number is not on the suppression list")
    return jsonify(sc.dump(sc.OptoutChange, {"number": e164, "opted_out": False}, reveal))


def normalise(number: str) -> str | None:
    """E.164 for `number` in the default region, or None when it is not a valid number."""
    return e164(number, runtime().settings.default_region)


def _approval_view(msg: Message) -> dict[str, Any]:
    """What a person needs to decide: the rendered body, a masked recipient (or the list a send goes to, with its
    size when it was held), cost, and why it was held."""
    held_reasons = [t.get("reason") for t in msg.timeline if t.get("to") == "held"]
    listed = {"list_ref": msg.list_ref, "list_size": msg.facts.get("list_size")} if msg.list_ref else {}
    return {"id": msg.id, "event_id": msg.event_id, "rule": msg.rule, "channel": msg.channel, "to": msg.to, **listed,
            "body": msg.body, "segments": msg.segments, "encoding": msg.encoding,
            "estimate": str(msg.estimate) if msg.estimate is not None else None, "send_at": msg.send_at,
            "held_at": msg.updated_at, "reasons": held_reasons[-1:] or list(msg.reasons), "facts": dict(msg.facts)}


@bp.get("/approvals")
@require_token
def list_approvals() -> ResponseReturnValue:
    """Held messages waiting for a person (`?rule=` or `?event_id=` to narrow)."""
    a = args(sc.ApprovalArgs)
    rt = runtime()
    docs = rt.store.messages.held(a.get("rule"), a.get("event_id"))
    full = [rt.store.messages.get_message(d.id) or d for d in docs]
    return jsonify(sc.dump(sc.Approvals, {"approvals": [_approval_view(m) for m in full]}, a["reveal"]))


@bp.post(f"/approvals/<message_id>/{_DECISION}")
@require_token
def decide_one(message_id: str, action: str) -> ResponseReturnValue:
    """Approve or reject one held message, with an optional note; `by` names who decided."""
    results = _decide([message_id], action)
    outcome = results[message_id]
    if outcome == "missing":
        return error(404, "not_found", f"no message {message_id}")
    if outcome not in ("approved", "rejected"):
        return error(409, "conflict", f"{message_id} is {outcome}", results=results)
    return jsonify({"results": results})


@bp.post(f"/approvals/{_DECISION}")
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
    results = _decide(ids, action)
    if given and all(r == "missing" for r in results.values()):
        return error(404, "not_found", "none of those messages exists", results=results)
    return jsonify({"results": results})


def _decide(ids: list[str], action: str) -> dict[str, str]:
    """Record the decision on each id; a result per id (see `wiring.handover.decide`)."""
    body = json_object()
    by = str(body.get("by") or request.headers.get("X-Hookline-User") or "api")[:80]
    note = str(body.get("note") or "")[:500]
    rt = runtime()
    return decide(rt.store, rt.enqueuer, ids, Verdict(action), by, note, time.time())
