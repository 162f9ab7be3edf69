"""Partitioned drains in one process against a real Redis: events spread over the partitions, a source's
partition key keeps one key's events together and in arrival order, and the sweep finds every partition with
waiting events, those beyond a lowered count and the single list of the versions before partitions included."""

from __future__ import annotations

import time
from pathlib import Path

import redis
from rq.job import Job

from tests.pending import drains_held, pending_ids
from tests.webhooks.test_ingest import ORDER, post_shop
from workers.core.events import Event
from workers.core.partitions import partition_of
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.store.keys import EVENTS_DRAIN, EVENTS_PENDING, events_drain_key, events_pending_key
from workers.wiring import pipeline
from workers.wiring.rulesdir import RulesDir


def store_events(rt: Runtime, count: int, tag: str) -> list[str]:
    """`count` new events stored and handed over as the web edge does (no drain job runs)."""
    ids = []
    for i in range(count):
        event = Event(id=f"evt_{tag}{i}", source="shop", type="orders/create", external_id=f"{tag}{i}",
                      received_at=time.time(), payload=ORDER | {"id": f"{tag}{i}"})
        result = rt.store.events.ingest(event, 3600, 3600, rt.settings.partitions)
        assert result.created
        if result.drain:
            rt.enqueuer.drain(result.drain)
        ids.append(event.id)
    return ids


def queued_drains(rt: Runtime) -> list[Job]:
    return [j for j in pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE).jobs
            if j.func_name == pipeline.DRAIN_EVENTS]


def test_events_spread_over_every_partition_each_with_one_drain(runtime: Runtime, redis_client: redis.Redis,
                                                                work) -> None:  # noqa: ANN001
    assert runtime.settings.partitions == 16
    ids = store_events(runtime, 200, "s")
    lengths = [redis_client.llen(events_pending_key(p)) for p in range(16)]
    assert all(lengths) and sum(lengths) == 200
    # The first event of each partition claimed that partition's drain: one job per partition, none more.
    assert sorted(j.args[1] for j in queued_drains(runtime)) == list(range(16))
    assert drains_held(redis_client) == list(range(16))
    work()
    assert {runtime.store.events.get_event(i).status for i in ids} == {"processed"}
    assert pending_ids(redis_client) == [] and drains_held(redis_client) == []


def test_a_sources_partition_key_keeps_one_orders_events_in_one_partition_in_arrival_order(
        runtime: Runtime, client, redis_client: redis.Redis) -> None:  # noqa: ANN001
    rules = Path(runtime.settings.rules_dir)
    sources = (rules / "sources.yaml").read_text()
    (rules / "sources.yaml").write_text(sources.replace("    keep_headers: [X-Shopify-Shop-Domain]\n",
                                                        "    keep_headers: [X-Shopify-Shop-Domain]\n"
                                                        "    partition_key: {path: id}\n", 1))
    runtime.rules = RulesDir(rules, runtime.settings)
    assert runtime.rules.reload(), runtime.rules.errors
    orders = [f"order-{n}" for n in range(6)]
    posted: dict[str, list[str]] = {order: [] for order in orders}
    for step, topic in enumerate(["orders/create", "orders/paid", "orders/cancelled"]):
        for order in orders:
            answer = post_shop(client, webhook_id=f"{order}-{step}", topic=topic, payload=ORDER | {"id": order})
            posted[order].append(answer.json["event_id"])
    for order, ids in posted.items():
        waiting = redis_client.lrange(events_pending_key(partition_of(order, 16)), 0, -1)
        assert [i for i in waiting if i in ids] == ids  # all there, oldest first
        assert runtime.store.events.get_event(ids[0]).event.partition_key == order


def test_the_sweep_claims_every_partition_with_waiting_events_beyond_a_lowered_count_and_the_old_list(
        runtime: Runtime, redis_client: redis.Redis, work) -> None:  # noqa: ANN001
    ids = store_events(runtime, 40, "w")
    # The count is lowered on the running deployment, and the drain jobs of the old count were lost (a Redis
    # restart, a worker that died with them); an upgrade left one event in the single list of before.
    runtime.settings = runtime.settings.with_(partitions=4)
    pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).empty()
    redis_client.delete(*(events_drain_key(p) for p in range(16)))
    old = ids.pop()
    redis_client.lrem(events_pending_key(partition_of(old, 16)), 0, old)
    redis_client.rpush(EVENTS_PENDING, old)
    waiting = sorted(p for p in range(16) if redis_client.llen(events_pending_key(p)))
    assert max(waiting) >= 4
    assert jobs.sweep_pending_events() == len(waiting) + 1
    assert drains_held(redis_client) == [*waiting, None]
    assert sorted((j.args[1] for j in queued_drains(runtime)), key=lambda p: -1 if p is None else p) == \
        [None, *waiting]
    assert jobs.sweep_pending_events() == 0  # one drain per partition at a time
    work()
    assert {runtime.store.events.get_event(i).status for i in [*ids, old]} == {"processed"}
    assert pending_ids(redis_client) == [] and drains_held(redis_client) == []


def test_a_drain_job_enqueued_before_partitions_drains_the_old_single_list(
        runtime: Runtime, redis_client: redis.Redis) -> None:
    [eid] = store_events(runtime, 1, "legacy")
    pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).empty()
    redis_client.delete(*(events_drain_key(p) for p in range(16)))
    redis_client.delete(*(events_pending_key(p) for p in range(16)))
    redis_client.rpush(EVENTS_PENDING, eid)
    redis_client.set(EVENTS_DRAIN, "old-token", px=15_000)
    assert jobs.drain_events("old-token") == {"events": 1, "more": 0}  # its arguments: the token alone
    assert runtime.store.events.get_event(eid).status == "processed"
    assert pending_ids(redis_client) == [] and drains_held(redis_client) == []
