"""Event records read and marked a whole drain batch at a time: in order, skipping (and never recreating) the
ones that expired, each marked with its own details."""

from __future__ import annotations

import time

from workers.core.events import Event
from workers.entry.runtime import Runtime
from workers.store.keys import event_key


def stored(rt: Runtime, *ids: str) -> list[Event]:
    events = [Event(eid, "shop", "orders/create", f"ext-{eid}", time.time(), {"x-test": "1"}, {"n": eid, "list": [1]})
              for eid in ids]
    for event in events:
        assert rt.store.events.ingest(event, 60, 3600, rt.settings.partitions).created
    return events


def test_load_events_reads_the_batch_in_order_and_skips_expired_ones(runtime: Runtime) -> None:
    a, b, c = stored(runtime, "evt_a", "evt_b", "evt_c")
    runtime.store.r.delete(event_key("evt_b"))  # expired
    assert runtime.store.events.load_events(["evt_c", "evt_b", "evt_missing", "evt_a"]) == [c, a]
    assert runtime.store.events.load_events([]) == []


def test_mark_processed_marks_each_with_its_details_and_never_recreates_an_expired_record(runtime: Runtime) -> None:
    stored(runtime, "evt_a", "evt_b", "evt_c", "evt_d")
    runtime.store.r.delete(event_key("evt_b"))
    now = time.time()
    runtime.store.events.mark_processed([("evt_a", {"rules": ["r1", "r2"], "messages": 2}), ("evt_b", {"rules": []}),
                                         ("evt_c", {"rules": [], "messages": 0})], now)
    runtime.store.events.mark_processed([("evt_d", {"error": "ValueError: bad"})], now, status="failed")
    a, c, d = (runtime.store.events.get_event(eid) for eid in ("evt_a", "evt_c", "evt_d"))
    assert a is not None and (a.status, a.processed_at, a.rules, a.messages) == ("processed", now, ("r1", "r2"), 2)
    assert c is not None and (c.status, c.rules, c.messages) == ("processed", (), 0)
    assert d is not None and (d.status, d.failed_at, d.error, d.rules) == ("failed", now, "ValueError: bad", None)
    assert not runtime.store.r.exists(event_key("evt_b"))
    runtime.store.events.mark_processed([], now)  # nothing to mark: no command
