"""What the web edge and the CLI do instead of acting: record a person's decision on a held message, and
enqueue the job that acts on it. Nothing here calls ClickSend, admits, sends or delivers a callback.

Every decision is a compare-and-set from `held`, so approving twice, or two people at once, sends once; an
expired hold cannot be approved.
"""

from __future__ import annotations

from enum import StrEnum

from workers.core.lifecycle import State
from workers.store import Store
from workers.wiring.pipeline import Enqueuer


class Verdict(StrEnum):
    """What a person decided about a held message."""

    APPROVE = "approve"
    REJECT = "reject"


def decide(store: Store, enqueuer: Enqueuer, ids: list[str], verdict: Verdict, by: str, note: str,
           now: float) -> dict[str, str]:
    """Record `verdict` on each held message and hand it to the workers: an approved message is fired (its
    policy checks quiet hours and rates again), a rejected one is reported. Returns a result per id:
    `approved`/`rejected`, `missing`, or `not held (<state>)`."""
    results = {}
    suffix = f": {note}" if note else ""
    for mid in ids:
        msg = store.messages.get_message(mid, with_log=False)
        if msg is None:
            results[mid] = "missing"
            continue
        if verdict is Verdict.APPROVE:
            send_at = max(now, msg.send_at or 0)
            moved, previous = store.messages.transition(
                mid, State.SCHEDULED, now, f"approved by {by}{suffix}", expect={State.HELD}, send_at=send_at,
                fields={"approved_by": by, "approved_at": now, "approval_note": note})
            if moved:
                enqueuer.fire(mid, None if send_at <= now else send_at)
        else:
            moved, previous = store.messages.transition(
                mid, State.REJECTED, now, f"rejected by {by}{suffix}", expect={State.HELD},
                fields={"rejected_by": by, "rejected_at": now, "approval_note": note})
            if moved:
                enqueuer.report(mid, State.REJECTED)
        results[mid] = ("approved" if verdict is Verdict.APPROVE else "rejected") if moved else \
            f"not held ({previous or msg.state})"
    return results
