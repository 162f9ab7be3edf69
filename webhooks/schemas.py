"""The HTTP surface's shapes as marshmallow schemas: what each endpoint reads from a query and answers.

The views parse their query strings with the `*Args` schemas and answer through the others (`dump`), and the
OpenAPI document (`webhooks.openapi`) is generated from the same classes, so what is documented is what is
answered. Times are ISO-8601 strings with an offset (UTC); phone numbers are masked unless the request asked
`reveal=1`. Owns no route and no store access.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from workers.core.lifecycle import State
from workers.core.messages import Channel
from workers.store.events import EVENT_STATUSES
from workers.store.pages import MAX_LIMIT
from workers.tools.trace import mask

_REVEAL: contextvars.ContextVar[bool] = contextvars.ContextVar("reveal", default=False)


def iso_time(value: Any) -> str | None:
    """A Unix time (number or numeric string) as ISO-8601 with offset, UTC; None for anything else."""
    try:
        ts = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(ts) or not -62135596800 <= ts < 253402300800:  # years 1-9999
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


class Time(fields.Field[Any]):
    """A stored Unix time, answered as an ISO-8601 string with offset (`2026-12-01T13:00:00.000+00:00`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, metadata={"type": "string", "format": "date-time"}, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso_time(value)


class Phone(fields.String):
    """A phone number, masked (`+6141•••••11`) unless the request asked `reveal=1`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return str(value) if _REVEAL.get() else mask(str(value))


def dump(schema: type[Schema], value: Any, reveal: bool = False, many: bool = False) -> Any:
    """`value` (JSON-like mappings) in `schema`'s shape; numbers shown whole only when `reveal`."""
    token = _REVEAL.set(reveal)
    try:
        return schema(many=many).dump(value)
    finally:
        _REVEAL.reset(token)


def load_args(schema: type[Schema], args: Mapping[str, str]) -> dict[str, Any]:
    """A query string read with `schema`; ValueError saying every problem (`field: problem`) otherwise."""
    try:
        loaded: dict[str, Any] = schema().load(dict(args))
    except ValidationError as exc:
        problems = exc.normalized_messages()  # type: ignore[no-untyped-call]
        raise ValueError("; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                                   for k, v in sorted(problems.items()))) from None
    return loaded


def _Str(**kwargs: Any) -> fields.String:  # noqa: N802 - a field, named as the fields are
    """A string that may be null."""
    return fields.String(allow_none=True, **kwargs)


def _Int(**kwargs: Any) -> fields.Integer:  # noqa: N802
    """A whole number that may be null."""
    return fields.Integer(allow_none=True, **kwargs)


_Free = fields.Dict  # an object whose keys are the sender's or a rule's (payloads, facts, headers)


# --- query strings -------------------------------------------------------------------------------------

class RevealArgs(Schema):
    """`reveal=1` shows phone numbers whole (the API token is required anyway)."""

    reveal = fields.Boolean(load_default=False, metadata={"description": "show phone numbers unmasked"})


class PageArgs(RevealArgs):
    """Paging and the time range, shared by the listings."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_LIMIT),
                           metadata={"description": f"items per page (1-{MAX_LIMIT})"})
    cursor = fields.String(metadata={"description": "the `next` of the page before"})
    since = fields.AwareDateTime(default_timezone=UTC, metadata={"description": "no older than (ISO-8601)"})
    until = fields.AwareDateTime(default_timezone=UTC, metadata={"description": "no newer than (ISO-8601)"})


class EventListArgs(PageArgs):
    """Filters of `GET /api/events` (times: when received)."""

    source = fields.String()
    type = fields.String()
    status = fields.String(validate=validate.OneOf(EVENT_STATUSES))
    rule = fields.String(metadata={"description": "a rule that matched the event"})
    q = fields.String(metadata={"description": "an event id, or the id the sender gave the event"})


class MessageListArgs(PageArgs):
    """Filters of `GET /api/messages` (times: when each message entered its current state)."""

    state = fields.String(validate=validate.OneOf([s.value for s in State]))
    channel = fields.String(validate=validate.OneOf([c.value for c in Channel]))
    rule = fields.String()
    event_id = fields.String()
    source = fields.String()
    q = fields.String(metadata={"description": "a message id, ClickSend's message id, or an event's id or the "
                                               "id its sender gave it (that event's messages)"})


class ApprovalArgs(RevealArgs):
    """Narrowing of `GET /api/approvals`."""

    rule = fields.String()
    event_id = fields.String()


# --- bodies read ---------------------------------------------------------------------------------------

class OptoutBody(Schema):
    """`POST /api/optouts`."""

    class Meta:
        unknown = EXCLUDE

    number = fields.String(required=True)
    note = fields.String()


class DecisionBody(Schema):
    """An approval or rejection: who decided and why (`by` defaults to X-Hookline-User, else `api`)."""

    class Meta:
        unknown = EXCLUDE

    note = fields.String()
    by = fields.String()


class BulkDecisionBody(DecisionBody):
    """A bulk decision: every held message of a rule or an event, or the listed ids."""

    rule = fields.String()
    event_id = fields.String()
    ids = fields.List(fields.String())


# --- answers -------------------------------------------------------------------------------------------

class Error(Schema):
    """Every error: a code, a sentence, and for a failed JSON Schema check the problems."""

    error = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.List(fields.Raw())
    results = fields.Dict(keys=fields.String(), values=fields.String())


class TimelineEntry(Schema):
    """One entry of a message's timeline: a transition (`from`, `to`) or a note (`kind`)."""

    at = Time()
    from_ = _Str(attribute="from", data_key="from")
    to = fields.String()
    reason = _Str()
    kind = fields.String(metadata={"description": "receipt, reply or callback (no state change)"})
    via = fields.String()
    result = _Str()
    keyword = _Str()
    state = fields.String()


class Receipt(Schema):
    """ClickSend's delivery receipt as applied."""

    status_code = fields.Raw(allow_none=True)
    status_text = _Str()
    error_code = fields.Raw(allow_none=True)
    error_text = _Str()
    timestamp = Time()


class Reply(Schema):
    """A reply the recipient sent."""

    id = _Str()
    body = _Str()
    timestamp = Time()
    keyword = _Str()


class Attempt(Schema):
    """One attempt at a callback."""

    at = Time()
    attempt = fields.Integer()
    status = _Int(metadata={"description": "the origin's HTTP status; null when no answer came (see error)"})
    error = _Str(metadata={"description": "why there was no answer (a timeout, a refused address...)"})
    body = _Str(metadata={"description": "the start of the origin's answer (at most 1,000 characters, `…` when "
                                         "cut), with what the request carried secret shown as [redacted]"})
    ms = fields.Integer(metadata={"description": "how long the attempt took, in milliseconds"})
    next = fields.String(metadata={"description": "what followed: delivered, retry, failed or exhausted"})


class Callback(Schema):
    """A callback to the originating system and its attempts."""

    id = fields.String(required=True)
    message_id = fields.String()
    event_id = _Str()
    source = fields.String()
    state = fields.String()
    created_at = Time()
    status = fields.String()
    attempts = fields.List(fields.Nested(Attempt))
    receipt = fields.Nested(Receipt)
    reply = fields.Nested(Reply)
    replayed = fields.Boolean()


class Message(Schema):
    """A message: what is sent to whom, where it is in its life, and what happened to it."""

    id = fields.String(required=True)
    event_id = fields.String()
    source = fields.String()
    rule = fields.String()
    channel = fields.String(validate=validate.OneOf([c.value for c in Channel]))
    state = fields.String(validate=validate.OneOf([s.value for s in State]))
    reasons = fields.List(fields.String())
    to = Phone()
    list_id = _Int()
    country = _Str()
    from_ = _Str(attribute="from", data_key="from")
    body = _Str()
    subject = _Str()
    media_file = _Str()
    voice = _Str()
    lang = _Str()
    require_input = fields.Boolean()
    machine_detection = fields.Boolean()
    operation = _Str(metadata={"description": "a contact write (channel contact): upsert or remove"})
    list_ref = _Str(metadata={"description": "the ClickSend list a contact write or a send to a list names (id "
                                             "or name, as the rule gives it)"})
    contact = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "the fields a contact write sets"})
    list_approved_by = _Str(metadata={"description": "a number's message of a send to a list: who approved that "
                                                     "send (it lifts the policy's approval: manual, nothing else)"})
    encoding = _Str()
    segments = _Int()
    non_gsm = fields.List(fields.String())
    key = _Str()
    replace = fields.Boolean()
    send_at = Time()
    policy = fields.String()
    timezone = _Str()
    critical = fields.Boolean()
    created_at = Time()
    estimate = _Str(metadata={"description": "money, as a decimal string"})
    reserved = _Str()
    reserved_day = _Str()
    facts = _Free()
    updated_at = Time()
    sending_since = Time()
    sent_at = Time()
    provider_id = _Str()
    price = _Str()
    parts = _Int()
    retries = fields.Integer()
    error = _Str()
    receipt = fields.Nested(Receipt, allow_none=True)
    approved_by = _Str()
    approved_at = Time()
    approval_note = _Str()
    rejected_by = _Str()
    rejected_at = Time()
    timeline = fields.List(fields.Nested(TimelineEntry))


class MessageDetail(Message):
    """A message with its timeline and its callbacks."""

    callbacks = fields.List(fields.Nested(Callback))


class Event(Schema):
    """An accepted event and what processing made of it."""

    id = fields.String(required=True)
    source = fields.String()
    type = fields.String()
    external_id = fields.String()
    received_at = Time()
    headers = fields.Dict(keys=fields.String(), values=fields.String())
    payload = fields.Raw(allow_none=True, metadata={"description": "the body as the sender sent it"})
    status = fields.String(validate=validate.OneOf(EVENT_STATUSES))
    processed_at = Time()
    failed_at = Time()
    rules = fields.List(fields.String())
    planned = fields.Integer(metadata={"description": "how many messages its rules planned, once processed"})
    error = fields.String()


class EventDetail(Event):
    """An event with its messages, each with its timeline and callbacks."""

    messages = fields.List(fields.Nested(MessageDetail))


class EventPage(Schema):
    """A page of events, newest received first; `next` is the cursor of the page after, null at the end."""

    events = fields.List(fields.Nested(Event), required=True)
    next = fields.String(required=True, allow_none=True)


class MessagePage(Schema):
    """A page of messages, newest change first; `next` is the cursor of the page after, null at the end."""

    messages = fields.List(fields.Nested(Message), required=True)
    next = fields.String(required=True, allow_none=True)


class Approval(Schema):
    """What a person needs to decide on a held message."""

    id = fields.String(required=True)
    event_id = fields.String()
    rule = fields.String()
    channel = fields.String()
    to = Phone()
    list_ref = _Str(metadata={"description": "the ClickSend list a contact write or a send to a list names"})
    list_size = _Int(metadata={"description": "a send to a list: how many contacts ClickSend counted on it when it "
                                              "was held (null when it could not say); approving the send lifts "
                                              "approval: manual for each number's message, each of which still "
                                              "passes the rest of its policy"})
    body = _Str()
    segments = _Int()
    encoding = _Str()
    estimate = _Str()
    send_at = Time()
    held_at = Time()
    reasons = fields.List(_Str())
    facts = _Free()


class Approvals(Schema):
    """Held messages waiting for a person, oldest first."""

    approvals = fields.List(fields.Nested(Approval), required=True)


class Decisions(Schema):
    """A result per message id: approved, rejected, missing or `not held (<state>)`."""

    results = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class Optout(Schema):
    """A suppressed number: since when, how (reply, operator) and the words that asked."""

    number = Phone(required=True)
    since = Time()
    via = fields.String()
    detail = fields.String()


class Optouts(Schema):
    """The suppression list."""

    optouts = fields.List(fields.Nested(Optout), required=True)


class OptoutChange(Schema):
    """A number added to or lifted from the suppression list."""

    number = Phone(required=True)
    opted_out = fields.Boolean(required=True)


class Accepted(Schema):
    """An event accepted (202), or recognised as a repeat of `event_id` (200, `duplicate`)."""

    event_id = fields.String(required=True)
    duplicate = fields.Boolean()


class PushQueued(Schema):
    """A pushed receipt or reply handed to the workers."""

    ok = fields.Boolean(required=True)
    queued = fields.Boolean(required=True)


class Health(Schema):
    """The process answers."""

    status = fields.String(required=True)


class Alert(Schema):
    """An operator alert."""

    since = Time()
    message = fields.String()


class Pause(Schema):
    """Why and until when an outbox is paused."""

    until = Time()
    reason = fields.String()


class Checks(Schema):
    """What readiness looked at."""

    redis = fields.Boolean(required=True)
    rules_loaded = fields.Boolean(required=True)


class Ready(Schema):
    """Readiness; the details (sources, errors, alerts, pauses) only with the API token."""

    status = fields.String(required=True, validate=validate.OneOf(["ready", "not_ready"]))
    checks = fields.Nested(Checks, required=True)
    sources = fields.List(fields.String())
    config_errors = fields.List(fields.String())
    alerts = fields.Dict(keys=fields.String(), values=fields.Nested(Alert))
    paused_outboxes = fields.Dict(keys=fields.String(), values=fields.Nested(Pause))
