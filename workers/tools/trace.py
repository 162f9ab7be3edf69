"""`hookline trace`: an event, its messages and everything that happened to them, for a person to read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workers.store import Store


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


def trace(store: Store, event_id: str) -> str | None:
    """The trace of `event_id`, or None when there is no such event."""
    event = store.events.get_event(event_id)
    if event is None:
        return None
    lines = [f"event {event.id}  source={event.event.source}  type={event.event.type}  "
             f"received {_when(event.event.received_at)}  status={event.status}"]
    if event.rules is not None:
        lines.append(f"  rules matched: {', '.join(event.rules) or 'none'}")
    for mid in store.messages.event_message_ids(event_id):
        msg = store.messages.get_message(mid)
        if msg is None:
            continue
        target = mask(msg.to) if msg.to else f"list {msg.list_id}"
        lines.append(f"  {msg.id}  {msg.channel} to {target}  rule={msg.rule}  state={msg.state}")
        for entry in msg.timeline:
            kind = entry.get("kind")
            arrow = kind if kind else f"{entry.get('from') or '·'} → {entry.get('to')}"
            lines.append(f"    {_when(entry.get('at'))}  {arrow}: {entry.get('reason', '')}")
        for cid in store.callbacks.message_callback_ids(mid):
            cb = store.callbacks.get_callback(cid)
            if cb:
                tries = ", ".join(str(a.get("status") or a.get("error")) for a in cb.attempts) or "none yet"
                lines.append(f"    callback {cid} ({cb.state}): {cb.status}; attempts: {tries}")
    return "\n".join(lines)
