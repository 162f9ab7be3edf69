"""An event's story: the event, its messages with their timelines (receipts, replies and callback attempts
included) and their callbacks with every attempt. `story` gathers it as values (the operator pages show it);
`trace` prints it for a person at a terminal (`hookline trace`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers.core.messages import Message
from workers.core.records import CallbackRecord, EventRecord
from workers.store import Store


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


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return "?"


def mask(number: str | None) -> str:
    """A phone number with its middle hidden (+6141•••••11): enough to tell numbers apart, not to dial."""
    if not number or len(number) < 7:
        return number or "-"
    return number[:5] + "•" * (len(number) - 7) + number[-2:]


def story(store: Store, event_id: str) -> EventStory | None:
    """The story of `event_id`, or None when there is no such event (messages that expired are left out)."""
    event = store.events.get_event(event_id)
    if event is None:
        return None
    messages = []
    for mid in store.messages.event_message_ids(event_id):
        msg = store.messages.get_message(mid)
        if msg is not None:
            found = (store.callbacks.get_callback(cid) for cid in store.callbacks.message_callback_ids(mid))
            messages.append(MessageStory(msg, tuple(cb for cb in found if cb)))
    return EventStory(event, tuple(messages))


def trace(store: Store, event_id: str) -> str | None:
    """The trace of `event_id`, or None when there is no such event."""
    told = story(store, event_id)
    if told is None:
        return None
    event = told.event
    lines = [f"event {event.id}  source={event.event.source}  type={event.event.type}  "
             f"received {_when(event.event.received_at)}  status={event.status}"]
    if event.rules is not None:
        lines.append(f"  rules matched: {', '.join(event.rules) or 'none'}")
    for item in told.messages:
        msg = item.message
        target = mask(msg.to) if msg.to else f"list {msg.list_id}"
        lines.append(f"  {msg.id}  {msg.channel} to {target}  rule={msg.rule}  state={msg.state}")
        for entry in msg.timeline:
            kind = entry.get("kind")
            arrow = kind if kind else f"{entry.get('from') or '·'} → {entry.get('to')}"
            lines.append(f"    {_when(entry.get('at'))}  {arrow}: {entry.get('reason', '')}")
        for cb in item.callbacks:
            tries = ", ".join(str(a.get("status") or a.get("error")) for a in cb.attempts) or "none yet"
            lines.append(f"    callback {cb.id} ({cb.state}): {cb.status}; attempts: {tries}")
    return "\n".join(lines)
