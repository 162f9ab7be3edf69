"""RQ entry points: thin shells that take ids or tokens, load, call the domain, save, enqueue the next step.

Every job is safe to run twice: RQ re-runs the jobs of killed workers.
"""

from __future__ import annotations

import time

from workers import pipeline
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
    """Turn stored events into work (rules arrive with the rules issue; until then, record processing)."""
    rt = get_runtime()
    events = rt.store.load_events(event_ids)
    rt.store.mark_events([e.id for e in events], "processed", time.time())


def sweep_pending_events() -> bool:
    """Periodic safety net: start a drain when events wait and no drain holds the lease."""
    rt = get_runtime()
    token = rt.store.claim_drain()
    if token:
        pipeline.enqueue_drain(rt.rq_connection, token)
    return token is not None
