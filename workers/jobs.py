"""RQ entry points: thin shells that take ids or tokens, load, call the domain, save, enqueue the next step.

Every job is safe to run twice: RQ re-runs the jobs of killed workers.
"""

from __future__ import annotations

import time

from workers import pipeline, processing
from workers.runtime import get_runtime


def drain_events(token: str) -> dict[str, int]:
    """Process one batch of pending events while holding the drain lease `token`; chain the next batch."""
    rt = get_runtime()
    ids = rt.store.pending_batch(rt.settings.event_batch)
    if ids:
        process_event_batch(ids)
    more = rt.store.finish_batch(token, len(ids))
    if more == 1:
        pipeline.enqueue_drain(rt.rq_connection, token)
    return {"events": len(ids), "more": more}


def process_event_batch(event_ids: list[str]) -> None:
    """Match, plan and store the messages of a batch of events (idempotent)."""
    processing.process_events(get_runtime(), event_ids, time.time())


def fire_message(message_id: str) -> bool:
    """RQ's scheduler calls this at a scheduled message's time: queue it for sending."""
    return processing.fire(get_runtime(), message_id, time.time())


def fire_due_messages() -> int:
    """Periodic safety net: fire scheduled messages whose RQ job was lost (e.g. a crash after creating them)."""
    rt = get_runtime()
    now = time.time()
    return sum(processing.fire(rt, mid, now) for mid in rt.store.due_messages(now - 2))


def sweep_pending_events() -> bool:
    """Periodic safety net: start a drain when events wait and no drain holds the lease."""
    rt = get_runtime()
    token = rt.store.claim_drain()
    if token:
        pipeline.enqueue_drain(rt.rq_connection, token)
    return token is not None
