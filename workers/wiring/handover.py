"""What the web edge and the CLI do instead of acting: record a person's decision (approve or reject a held
message, resend a failed one, cancel pending ones, replay a callback, resume a paused outbox) and enqueue the
job that acts on it. Nothing here calls ClickSend, admits, sends or delivers a callback.

Every decision is a compare-and-set or a create-if-absent, so asking twice, or two people at once, acts once:
an expired hold cannot be approved, and a failed message is resent at most once (its resend may be resent).
"""

from __future__ import annotations

import hashlib
import logging
from enum import StrEnum

from workers.core.lifecycle import CANCELLABLE, State
from workers.core.messages import Message
from workers.store import Store
from workers.wiring.pipeline import Enqueuer

log = logging.getLogger("hookline.handover")

# What a person may resend: the message never reached the recipient, and nothing of it is still under way.
RESENDABLE = frozenset({State.FAILED, State.UNDELIVERED})


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


def resend_id(message_id: str) -> str:
    """The id of `message_id`'s resend: one per message, so a second request finds the first."""
    return "msg_" + hashlib.sha256(f"{message_id}\0resend".encode()).hexdigest()[:32]


def _resend_copy(msg: Message, by: str, now: float) -> Message:
    """A new message with `msg`'s content, scheduled now; its policy decides again when it fires (quiet hours,
    rates, duplicates, budget), as for any other message. Nothing of the first one's sending is carried over."""
    return Message.from_json(msg.document() | {
        "id": resend_id(msg.id), "state": State.SCHEDULED, "send_at": now, "created_at": now,
        "reasons": [f"resend of {msg.id} asked by {by}"], "reserved": None, "reserved_day": None, "facts": {}})


def resend(store: Store, enqueuer: Enqueuer, ids: list[str], by: str, now: float) -> dict[str, str]:
    """Resend failed or undelivered messages as new messages of the same event, and fire them. Returns a result
    per id: `resent as <new id>`, `already resent as <new id>`, `missing`, or `not resendable (<state>)`."""
    results = {}
    for mid in ids:
        msg = store.messages.get_message(mid, with_log=False)
        if msg is None:
            results[mid] = "missing"
        elif msg.state not in RESENDABLE:
            results[mid] = f"not resendable ({msg.state})"
        else:
            copy = _resend_copy(msg, by, now)
            [created] = store.messages.create_messages([copy], now)
            if created:
                store.messages.note(mid, {"at": now, "kind": "resent", "reason": f"resent as {copy.id} by {by}"})
                enqueuer.fire(copy.id)
            results[mid] = f"resent as {copy.id}" if created else f"already resent as {copy.id}"
    return results


def cancel(store: Store, enqueuer: Enqueuer, ids: list[str], by: str, note: str) -> dict[str, str]:
    """Hand pending messages (held, scheduled, queued) to a job that cancels them and gives back what admission
    reserved for them. Returns a result per id: `cancelling`, `missing`, or `not cancellable (<state>)`."""
    results, wanted = {}, []
    for mid, msg in zip(ids, store.messages.get_messages(ids), strict=True):
        if msg is None:
            results[mid] = "missing"
        elif msg.state not in CANCELLABLE:
            results[mid] = f"not cancellable ({msg.state})"
        else:
            results[mid] = "cancelling"
            wanted.append(mid)
    if wanted:
        enqueuer.cancel(wanted, f"cancelled by {by}" + (f": {note}" if note else ""))
    return results


def replay(store: Store, enqueuer: Enqueuer, callback_ids: list[str], by: str, now: float) -> dict[str, str]:
    """Send exhausted or failed callbacks again, noting on each message's timeline who asked. Returns a result
    per id: `replaying`, `missing`, or `not replayable (<status>)`."""
    results = {}
    for cid in callback_ids:
        record = store.callbacks.get_callback(cid)
        if record is None:
            results[cid] = "missing"
        elif record.status not in ("exhausted", "failed") or not store.callbacks.reopen_callback(cid):
            results[cid] = f"not replayable ({record.status})"
        else:
            store.messages.note(record.message_id, {"at": now, "kind": "replay",
                                                    "reason": f"callback {cid} ({record.state}) replayed by {by}"})
            enqueuer.callback(cid)
            results[cid] = "replaying"
    return results


def resume(store: Store, enqueuer: Enqueuer, channel: str, by: str) -> bool:
    """Lift `channel`'s outbox pause and start a flush now under a new flush lease, unless a flush is running
    (it goes on without the pause). The flush waiting out the pause, if any, finds the lease another's when its
    time comes and does nothing, so two flushes never take rate tokens side by side. False when the outbox was
    not paused."""
    resumed = store.outbox.resume(channel)
    if not resumed.lifted:
        return False
    log.warning("%s outbox resumed by %s", channel, by)
    if resumed.flush:
        enqueuer.flush(resumed.flush)
    return True
