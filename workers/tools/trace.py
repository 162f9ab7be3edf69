"""`hookline trace`: an event, its messages and everything that happened to them, as text for a person to read
or as JSON for a script (times as ISO-8601 strings, numbers masked either way); and the same story as values
(`story`) for the operator pages.

Reads the store only; never changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers.core.messages import Message
from workers.core.records import CallbackRecord, EventRecord
from workers.store import Store


def when(ts: Any) -> str:
    """A Unix time as a person reads it in a table, in UTC (`2026-12-01 12:00:00`); `?` when there is none."""
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return "?"


def iso(ts: Any) -> str | None:
    """A Unix time as ISO 8601 in UTC with its offset (`2026-12-01T12:00:00+00:00`); None when there is none."""
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC).isoformat()
    except (TypeError, ValueError):
        return None


def mask(number: str | None) -> str:
    """A phone number with its middle hidden (+6141•••••11): enough to tell numbers apart, not to dial."""
    if not number or len(number) < 7:
        return number or "-"
    return number[:5] + "•" * (len(number) - 7) + number[-2:]


def _messages(store: Store, event_id: str) -> list[tuple[Message, list[CallbackRecord]]]:
    """The event's messages (with timelines), each with its callbacks."""
    out = []
    for mid in store.messages.event_message_ids(event_id):
        msg = store.messages.get_message(mid)
        if msg is not None:
            callbacks = [cb for cid in store.callbacks.message_callback_ids(mid)
                         if (cb := store.callbacks.get_callback(cid)) is not None]
            out.append((msg, callbacks))
    return out


@dataclass(frozen=True)
class MessageStory:
    """One message of an event, its timeline read with it, and its callbacks."""

    message: Message
    callbacks: tuple[CallbackRecord, ...]


@dataclass(frozen=True)
class EventStory:
    """An event and everything that happened to what it planned."""

    event: EventRecord
    messages: tuple[MessageStory, ...]


def story(store: Store, event_id: str) -> EventStory | None:
    """The story of `event_id` as values, or None when there is no such event (expired messages left out)."""
    event = store.events.get_event(event_id)
    if event is None:
        return None
    return EventStory(event, tuple(MessageStory(msg, tuple(cbs)) for msg, cbs in _messages(store, event_id)))


def trace(store: Store, event_id: str) -> str | None:
    """The trace of `event_id`, or None when there is no such event."""
    event = store.events.get_event(event_id)
    if event is None:
        return None
    lines = [f"event {event.id}  source={event.event.source}  type={event.event.type}  "
             f"received {when(event.event.received_at)}  status={event.status}"]
    if event.rules is not None:
        lines.append(f"  rules matched: {', '.join(event.rules) or 'none'}")
    for msg, callbacks in _messages(store, event_id):
        target = mask(msg.to) if msg.to else f"list {msg.list_id or msg.list_ref}"
        lines.append(f"  {msg.id}  {msg.channel} to {target}  rule={msg.rule}  state={msg.state}")
        for entry in msg.timeline:
            kind = entry.get("kind")
            arrow = kind if kind else f"{entry.get('from') or '·'} → {entry.get('to')}"
            lines.append(f"    {when(entry.get('at'))}  {arrow}: {entry.get('reason', '')}")
        for cb in callbacks:
            tries = ", ".join(str(a.get("status") or a.get("error")) for a in cb.attempts) or "none yet"
            lines.append(f"    callback {cb.id} ({cb.state}): {cb.status}; attempts: {tries}")
    return "\n".join(lines)


def _timed(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A timeline entry or callback attempt with its time as ISO 8601."""
    return dict(entry) | ({"at": iso(entry["at"])} if "at" in entry else {})


def callback_json(cb: CallbackRecord) -> dict[str, Any]:
    """A callback as `--json` shows it: which message and state it reports, its status and every attempt."""
    return {"id": cb.id, "message_id": cb.message_id, "event_id": cb.event_id, "source": cb.source,
            "state": cb.state, "status": cb.status, "created_at": iso(cb.created_at),
            "attempts": [_timed(a) for a in cb.attempts]}


def _event_json(event: EventRecord) -> dict[str, Any]:
    return {"id": event.id, "source": event.event.source, "type": event.event.type,
            "external_id": event.event.external_id, "received_at": iso(event.event.received_at),
            "status": event.status, "rules": list(event.rules) if event.rules is not None else None,
            "error": event.error}


def trace_json(store: Store, event_id: str) -> dict[str, Any] | None:
    """What `trace` shows, as JSON: the event, and each message with its timeline and callbacks."""
    event = store.events.get_event(event_id)
    if event is None:
        return None
    messages = [{"id": msg.id, "channel": str(msg.channel), "to": mask(msg.to) if msg.to else None,
                 "list_id": msg.list_id, "rule": msg.rule, "state": str(msg.state), "body": msg.body,
                 "send_at": iso(msg.send_at), "timeline": [_timed(e) for e in msg.timeline],
                 "callbacks": [callback_json(cb) for cb in callbacks]}
                for msg, callbacks in _messages(store, event_id)]
    return {"event": _event_json(event), "messages": messages}
