"""Draining events: batches, chaining, leases and the periodic sweep, against a real Redis."""

from __future__ import annotations

import redis

from tests.webhooks.test_ingest import post_shop
from workers import store
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.wiring import pipeline


def test_large_backlog_is_drained_in_chained_batches(runtime: Runtime, client, work,  # noqa: ANN001
                                                     redis_client: redis.Redis) -> None:
    rt = runtime
    rt.settings = rt.settings.with_(event_batch=4)
    ids = [post_shop(client, webhook_id=f"w{i}").json["event_id"] for i in range(10)]
    work()
    assert redis_client.llen(store.EVENTS_PENDING) == 0
    assert all(rt.store.events.get_event(i).status == "processed" for i in ids)


def test_lost_enqueue_is_recovered_by_the_sweep(runtime: Runtime, client, work,  # noqa: ANN001
                                                redis_client: redis.Redis) -> None:
    event_id = post_shop(client).json["event_id"]
    # Simulate a web process that died between storing the event and enqueueing the drain.
    pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).empty()
    redis_client.delete(store.EVENTS_DRAIN)
    assert jobs.sweep_pending_events() is True
    assert jobs.sweep_pending_events() is False  # one drain at a time
    work()
    assert runtime.store.events.get_event(event_id).status == "processed"


def test_sweep_does_nothing_when_nothing_waits(runtime: Runtime) -> None:
    assert jobs.sweep_pending_events() is False


def test_a_drain_that_lost_its_lease_does_not_drop_events(runtime: Runtime, client,  # noqa: ANN001
                                                          redis_client: redis.Redis) -> None:
    post_shop(client)
    stale = jobs.drain_events("someone-elses-token")
    assert stale["more"] == -1
    assert redis_client.llen(store.EVENTS_PENDING) == 1


def test_drain_rerun_is_harmless(runtime: Runtime, client, work) -> None:  # noqa: ANN001
    event_id = post_shop(client).json["event_id"]
    jobs.process_event_batch([event_id])
    jobs.process_event_batch([event_id, "evt_expired"])
    assert runtime.store.events.get_event(event_id).status == "processed"
    assert runtime.store.events.get_event("evt_expired") is None
