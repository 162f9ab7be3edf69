"""The approval queue: held messages, approving and rejecting them (alone or in bulk), and expiry.

Every decision is a compare-and-set from `held`, so approving twice, or two people at once, sends once.
"""

from __future__ import annotations

from typing import Any

from workers.core.lifecycle import State
from workers.flow import origin, processing
from workers.wiring.runtime import Runtime


def held(rt: Runtime, rule: str | None = None, event_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Held messages, oldest first, optionally only one rule's or one event's."""
    ids = rt.store.messages.messages_in_state(State.HELD, limit=limit)
    docs = [d for d in rt.store.messages.get_messages(ids) if d]
    return [d for d in docs if (rule is None or d.get("rule") == rule) and (event_id is None or
                                                                            d.get("event_id") == event_id)]


def approve(rt: Runtime, ids: list[str], by: str, note: str, now: float) -> dict[str, str]:
    """Approve held messages; each is checked again by its policy (quiet hours, rate) and then sent."""
    results = {}
    for mid in ids:
        msg = rt.store.messages.get_message(mid, with_log=False)
        if msg is None:
            results[mid] = "missing"
            continue
        send_at = max(now, float(msg.get("send_at") or 0))
        fields = {"approved_by": by, "approved_at": now, "approval_note": note}
        moved, previous = rt.store.messages.transition(mid, State.SCHEDULED, now, f"approved by {by}" +
                                              (f": {note}" if note else ""), expect={State.HELD}, fields=fields,
                                              send_at=send_at)
        if not moved:
            results[mid] = f"not held ({previous or msg['state']})"
            continue
        results[mid] = "approved"
        if send_at <= now:
            processing.fire(rt, mid, now)
        else:
            rt.schedule_fire(mid, send_at)
    return results


def reject(rt: Runtime, ids: list[str], by: str, note: str, now: float) -> dict[str, str]:
    """Reject held messages: they are never sent."""
    results = {}
    for mid in ids:
        moved, previous = rt.store.messages.transition(mid, State.REJECTED, now, f"rejected by {by}" +
                                              (f": {note}" if note else ""), expect={State.HELD},
                                              fields={"rejected_by": by, "rejected_at": now, "approval_note": note})
        results[mid] = "rejected" if moved else f"not held ({previous or 'missing'})"
        if moved:
            msg = rt.store.messages.get_message(mid, with_log=False)
            if msg:
                origin.notify(rt, [msg], State.REJECTED.value, now)
    return results


def expire(rt: Runtime, now: float) -> list[str]:
    """Holds older than their policy's approval_expires become `expired` and can no longer be approved."""
    config = rt.rules.current()
    expired = []
    for msg in held(rt, limit=5000):
        policy = config.policy(msg.get("policy") or "default")
        if now - float(msg.get("updated_at") or now) < policy.approval_expires:
            continue
        moved, _ = rt.store.messages.transition(msg["id"], State.EXPIRED, now,
                                       f"no decision within approval_expires ({policy.approval_expires:.0f}s)",
                                       expect={State.HELD})
        if moved:
            expired.append(msg["id"])
            origin.notify(rt, [msg | {"state": "expired"}], State.EXPIRED.value, now)
    return expired
