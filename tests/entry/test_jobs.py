"""Draining events: batches, chaining, leases and the periodic sweep, against a real Redis."""

from __future__ import annotations

import json
import threading

import pytest
import redis
from rq import SimpleWorker
from rq.job import Job
from rq.timeouts import JobTimeoutException

from tests.conftest import API_TOKEN, EXAMPLES_DIR
from tests.pending import drains_held, pending_ids
from tests.store.test_batches import ran
from tests.webhooks.test_ingest import post_shop
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.store import keys
from workers.store.messages import Written
from workers.wiring import pipeline
from workers.wiring.settings import Settings

ORDER = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())  # authorized, with a phone: one SMS per order


def drain_one_job_at_a_time(rt: Runtime, ids: list[str]) -> list[tuple[dict, list[str]]]:
    """Run the events queue one job at a time, as a worker would; after each drain job, what it returned and
    the status of every event in `ids`. Each job must leave at most one drain job behind it (the chain)."""
    queue = pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE)
    steps = []
    while queue.job_ids:
        [job_id] = queue.job_ids  # one drain at a time: never two jobs waiting
        job = Job.fetch(job_id, connection=rt.rq_connection)
        assert job.func_name == pipeline.DRAIN_EVENTS
        SimpleWorker([queue], connection=rt.rq_connection).work(burst=True, max_jobs=1)
        steps.append((job.return_value(), [rt.store.events.get_event(i).status for i in ids]))
        assert len(steps) <= len(ids), "the drain never ends"
    return steps


def test_large_backlog_is_drained_in_chained_batches(runtime: Runtime, client,  # noqa: ANN001
                                                     redis_client: redis.Redis,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 0)  # every job's budget is spent after its first batch
    rt = runtime
    rt.settings = rt.settings.with_(event_batch=4, partitions=1)  # one partition: one chain of drains
    ids = [post_shop(client, webhook_id=f"w{i}", payload=ORDER | {"id": i}).json["event_id"] for i in range(10)]
    assert pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE).count == 1  # only the first claimed the drain
    steps = drain_one_job_at_a_time(rt, ids)
    # Three jobs, oldest events first, each chaining the next while more wait.
    assert [result for result, _ in steps] == [{"events": 4, "more": 1}, {"events": 4, "more": 1},
                                               {"events": 2, "more": 0}]
    assert [statuses.count("processed") for _, statuses in steps] == [4, 8, 10]
    assert steps[0][1] == ["processed"] * 4 + ["received"] * 6
    assert pending_ids(redis_client) == []
    assert drains_held(redis_client) == []  # the lease is given back when the list is empty
    # Every event's message was planned exactly once.
    assert sorted(len(rt.store.messages.event_message_ids(i)) for i in ids) == [1] * 10
    assert redis_client.llen(keys.outbox_key("sms")) == 10


def test_a_drain_job_within_its_budget_goes_on_to_the_next_batch_and_leaves_no_job_behind(
        runtime: Runtime, client, redis_client: redis.Redis) -> None:  # noqa: ANN001
    runtime.settings = runtime.settings.with_(event_batch=4, partitions=1)
    ids = [post_shop(client, webhook_id=f"r{i}", payload=ORDER | {"id": i}).json["event_id"] for i in range(10)]
    # One fork for the whole backlog: the three batches in one job, the lease given back at the end.
    assert drain_one_job_at_a_time(runtime, ids) == [({"events": 10, "more": 0}, ["processed"] * 10)]
    assert pending_ids(redis_client) == [] and drains_held(redis_client) == []


def test_a_drain_job_processes_hookline_event_batch_events_and_chains_the_rest(
        runtime: Runtime, client, redis_url: str, rules_dir,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 0)
    settings = Settings.from_env({"REDIS_URL": redis_url, "HOOKLINE_RULES_DIR": str(rules_dir),
                                  "HOOKLINE_API_TOKEN": API_TOKEN, "HOOKLINE_EVENT_BATCH": "3",
                                  "HOOKLINE_PARTITIONS": "1"})
    assert (settings.event_batch, settings.partitions) == (3, 1)
    runtime.settings = settings
    ids = [post_shop(client, webhook_id=f"b{i}", payload=ORDER | {"id": i}).json["event_id"] for i in range(7)]
    steps = drain_one_job_at_a_time(runtime, ids)
    first, statuses = steps[0]
    assert first == {"events": 3, "more": 1}  # exactly the batch, and the rest chained
    assert statuses == ["processed"] * 3 + ["received"] * 4
    assert [result["events"] for result, _ in steps] == [3, 3, 1]
    assert steps[-1][1] == ["processed"] * 7


def test_lost_enqueue_is_recovered_by_the_sweep(runtime: Runtime, client, work,  # noqa: ANN001
                                                redis_client: redis.Redis) -> None:
    event_id = post_shop(client).json["event_id"]
    # Simulate a web process that died between storing the event and enqueueing the drain.
    [drain] = pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).jobs
    pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).empty()
    redis_client.delete(keys.events_drain_key(drain.args[1]))
    assert jobs.sweep_pending_events() == 1
    assert jobs.sweep_pending_events() == 0  # one drain at a time
    work()
    assert runtime.store.events.get_event(event_id).status == "processed"


def test_sweep_does_nothing_when_nothing_waits(runtime: Runtime) -> None:
    assert jobs.sweep_pending_events() == 0


def test_a_drain_that_lost_its_lease_does_not_drop_events(runtime: Runtime, client,  # noqa: ANN001
                                                          redis_client: redis.Redis) -> None:
    post_shop(client)
    [drain] = pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).jobs
    stale = jobs.drain_events("someone-elses-token", drain.args[1])
    assert stale["more"] == -1
    assert len(pending_ids(redis_client)) == 1


def _what_processing_left(rt: Runtime, event_id: str) -> dict:
    """Everything processing an event writes: its messages with their states and timelines, the outbox, the
    due set, the state counts, callbacks waiting to be reported, and the flush jobs it started."""
    r = rt.store.r
    messages = {}
    for mid in rt.store.messages.event_message_ids(event_id):
        msg = rt.store.messages.get_message(mid)
        messages[mid] = (msg.state, [(t.get("from"), t["to"]) for t in msg.timeline])
    return {"messages": messages, "outbox": r.lrange(keys.outbox_key("sms"), 0, -1),
            "due": r.zrange(keys.DUE, 0, -1), "counts": rt.store.messages.state_counts(),
            "unreported": r.zrange(keys.UNREPORTED, 0, -1),
            "flushes": pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE).count}


def test_drain_rerun_is_harmless(runtime: Runtime, client) -> None:  # noqa: ANN001
    event_id = post_shop(client, payload=ORDER).json["event_id"]
    [drain] = pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).jobs
    token, partition = drain.args
    # A drain job killed after processing its batch but before dropping it from the pending list: RQ runs it
    # again with the same lease, and it processes the same events again.
    jobs.process_event_batch([event_id])
    first = _what_processing_left(runtime, event_id)
    [(mid, (state, timeline))] = first["messages"].items()
    assert (state, timeline) == ("queued", [(None, "planned"), ("planned", "queued")])
    assert first["outbox"] == [mid] and first["flushes"] == 1
    assert jobs.drain_events(token, partition) == {"events": 1, "more": 0}
    jobs.process_event_batch([event_id, "evt_expired"])  # and once more, beside an event that has expired
    # Nothing new: the same message, in the same state with the same timeline, once in the outbox, one flush.
    assert _what_processing_left(runtime, event_id) == first
    assert runtime.store.events.get_event(event_id).status == "processed"
    assert runtime.store.events.get_event(event_id).rules == ("order-confirmation",)
    assert runtime.store.events.get_event("evt_expired") is None
    assert pending_ids(runtime.store.r) == []


def test_a_drain_whose_lease_lapsed_takes_it_back_and_drains(runtime: Runtime, client,  # noqa: ANN001
                                                             redis_client: redis.Redis) -> None:
    event_id = post_shop(client, payload=ORDER).json["event_id"]
    [drain] = pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).jobs
    token, partition = drain.args
    # It waited in the queue longer than the lease and nobody claimed it.
    redis_client.delete(keys.events_drain_key(partition))
    assert jobs.drain_events(token, partition) == {"events": 1, "more": 0}
    assert runtime.store.events.get_event(event_id).status == "processed"
    assert drains_held(redis_client) == []


def test_two_drains_over_the_same_events_at_once_create_and_send_each_message_once(
        e2e: Runtime, client, work, simulator) -> None:  # noqa: ANN001
    # What an overlap would do (a drain frozen past its lease while another took over): both plan the same
    # events; message ids derive from event, rule and recipient and creation is set-if-absent, so the second
    # finds every message there and queues nothing.
    ids = [post_shop(client, webhook_id=f"o{i}", payload=ORDER | {"id": i}).json["event_id"] for i in range(20)]
    pipeline.queue(e2e.rq_connection, pipeline.EVENTS_QUEUE).empty()
    start = threading.Barrier(2)

    def drain() -> None:
        start.wait(10)
        jobs.process_event_batch(ids)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    outbox = e2e.store.r.lrange(keys.outbox_key("sms"), 0, -1)
    assert len(outbox) == len(set(outbox)) == 20
    work()
    assert sorted(simulator.state.ledger.values()) == [1] * 20
    assert [e2e.store.events.get_event(i).status for i in ids] == ["processed"] * 20


def test_a_drain_sends_what_it_planned_before_it_chains_its_next_job(
        runtime: Runtime, client, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # A job retried after chaining would hold the lease beside the job it chained: chaining comes last.
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 0)
    runtime.settings = runtime.settings.with_(event_batch=2, partitions=1)
    for i in range(3):
        post_shop(client, webhook_id=f"c{i}", payload=ORDER | {"id": i})
    queue = pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE)
    chained_when_sending = []
    send = jobs._send_planned

    def spy(channels: dict[str, dict[str, Written]]) -> None:
        chained_when_sending.append(queue.count)
        send(channels)

    monkeypatch.setattr(jobs, "_send_planned", spy)
    SimpleWorker([queue], connection=runtime.rq_connection).work(burst=True, max_jobs=1)
    assert chained_when_sending == [0] and queue.count == 1


def test_rqs_job_timeout_is_not_taken_for_a_failed_send_from_the_drain(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def timed_out(*args: object, **kwargs: object) -> None:
        raise JobTimeoutException("Task exceeded maximum timeout value")

    monkeypatch.setattr(jobs, "_flush", timed_out)
    runtime.store.r.rpush(keys.outbox_key("sms"), "msg_planned")  # what the drain queued
    with pytest.raises(JobTimeoutException):
        jobs._send_planned({"sms": {}})


def test_a_drain_sends_the_messages_it_wrote_without_reading_them_back(
        e2e: Runtime, client, simulator) -> None:  # noqa: ANN001
    e2e.settings = e2e.settings.with_(partitions=1)  # one drain for every event
    ids = [post_shop(client, webhook_id=f"r{i}", payload=ORDER | {"id": i}).json["event_id"] for i in range(12)]
    [drain] = pipeline.queue(e2e.rq_connection, pipeline.EVENTS_QUEUE).jobs
    used = ran(e2e.store.r, lambda: jobs.drain_events(*drain.args))
    assert sorted(simulator.state.ledger.values()) == [1] * 12  # each sent once, by the drain itself
    assert [e2e.store.events.get_event(i).status for i in ids] == ["processed"] * 12
    assert used["hgetall"] == 0, used
