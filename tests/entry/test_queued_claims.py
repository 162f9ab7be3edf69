"""Drains (and the pushed receipts' drain, and outbox flushes) that wait in RQ's queue under a claim naming their
job, against a real Redis: under a backlog the claim outlasts the short lease, so the sweep and new events start
no second drain while the first waits; the sweep shortens a claim whose job RQ has started or never got, and
takes over at once one whose job ended without draining. Time passing is stood in for by shortening a lease's
expiry."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from rq import SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from tests.conftest import Simulator
from tests.flow.test_feedback import receipt, sent_message
from tests.flow.test_sender import queue_messages, sends, states
from tests.webhooks.test_ingest import post_shop
from workers.core.events import Event
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.flow.sender import FlushOutcome
from workers.store import keys
from workers.store.events import DRAIN_LEASE_MS, DRAIN_QUEUED_MS, DrainClaim
from workers.store.lease import LeaseKeeper, job_key
from workers.store.outbox import FLUSH_LEASE_MS, FLUSH_QUEUED_MS
from workers.store.pushed import PUSHED_LEASE_MS, Pushed
from workers.wiring import handover, pipeline


def drain_jobs(rt: Runtime) -> list[Job]:
    return [j for j in pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE).jobs
            if j.func_name == pipeline.DRAIN_EVENTS]


def one_partition(rt: Runtime) -> str:
    """Every event in one partition; its drain lease."""
    rt.settings = rt.settings.with_(partitions=1, event_batch=2)
    return keys.events_drain_key(0)


def test_a_drain_waiting_in_a_backlog_keeps_its_claim_and_no_second_drain_is_started(
        runtime: Runtime, client, redis_client: redis.Redis,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 0)  # the job hands over after its first batch
    lease = one_partition(runtime)
    post_shop(client, webhook_id="q0", payload={"id": 0})
    [drain] = drain_jobs(runtime)
    assert redis_client.pttl(lease) > DRAIN_LEASE_MS  # a queued claim: longer than the short lease
    assert redis_client.get(job_key(lease)) == drain.id  # naming the job it was claimed for
    # The job still waits when the short lease would have lapsed: neither the sweep nor new events claim again.
    redis_client.pexpire(lease, DRAIN_LEASE_MS // 3)
    redis_client.pexpire(job_key(lease), DRAIN_LEASE_MS // 3)
    assert jobs.sweep_pending_events() == 0
    assert redis_client.pttl(lease) > DRAIN_QUEUED_MS - 60_000  # renewed for the job still waiting
    for i in range(1, 5):
        assert post_shop(client, webhook_id=f"q{i}", payload={"id": i}).status_code == 202
    assert [j.id for j in drain_jobs(runtime)] == [drain.id]
    # The job starts: the claim becomes the short lease; a chained batch is claimed for its own job.
    queue = pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE)
    SimpleWorker([queue], connection=runtime.rq_connection).work(burst=True, max_jobs=1)
    assert drain.return_value() == {"events": 2, "more": 1}
    [chained] = drain_jobs(runtime)
    assert chained.args[1] == drain.args[1] and redis_client.get(job_key(lease)) == chained.id
    assert chained.args[0] != drain.args[0]  # under a token of its own
    assert jobs.drain_events(*drain.args) == {"events": 0, "more": -1}  # a retry of the first finds it taken
    assert redis_client.pttl(lease) > DRAIN_LEASE_MS
    assert jobs.sweep_pending_events() == 0
    SimpleWorker([queue], connection=runtime.rq_connection).work(burst=True)
    assert redis_client.llen(keys.events_pending_key(0)) == 0
    assert not redis_client.exists(lease) and not redis_client.exists(job_key(lease))


def test_a_running_drain_holds_the_short_lease_its_claim_became(runtime: Runtime, client,  # noqa: ANN001
                                                               redis_client: redis.Redis) -> None:
    lease = one_partition(runtime)
    post_shop(client)
    [drain] = drain_jobs(runtime)
    keeper = runtime.store.events.drain_keeper(runtime.store.events.queued_drains()[0])
    assert keeper.hold()
    assert 0 < redis_client.pttl(lease) <= DRAIN_LEASE_MS and not redis_client.exists(job_key(lease))
    assert runtime.store.events.queued_drains() == []  # the sweep leaves a running drain to its keeper
    assert jobs.sweep_pending_events() == 0
    assert [j.id for j in drain_jobs(runtime)] == [drain.id]


def test_the_sweep_takes_over_at_once_a_drain_whose_job_ended_without_draining(
        runtime: Runtime, client, work, redis_client: redis.Redis) -> None:  # noqa: ANN001
    lease = one_partition(runtime)
    event_id = post_shop(client).json["event_id"]
    [drain] = drain_jobs(runtime)
    drain.cancel()  # someone cancelled it in RQ: nobody will drain for its claim
    assert jobs.sweep_pending_events() == 1
    [heir] = drain_jobs(runtime)
    assert heir.id != drain.id and heir.args[0] != drain.args[0]  # a claim of its own, for a job of its own
    assert redis_client.get(lease) == heir.args[0] and redis_client.get(job_key(lease)) == heir.id
    assert jobs.sweep_pending_events() == 0  # and that one waits
    assert jobs.drain_events(*drain.args) == {"events": 0, "more": -1}  # the cancelled one, run after all
    work()
    assert runtime.store.events.get_event(event_id).status == "processed"


def test_a_drain_whose_job_was_started_or_never_enqueued_gets_the_short_lease_and_lapses_as_before(
        runtime: Runtime, client, work, redis_client: redis.Redis) -> None:  # noqa: ANN001
    lease = one_partition(runtime)
    post_shop(client)
    [drain] = drain_jobs(runtime)
    drain.set_status(JobStatus.STARTED)  # a worker took it and died before it held the lease
    assert jobs.sweep_pending_events() == 0
    assert 0 < redis_client.pttl(lease) <= DRAIN_LEASE_MS and not redis_client.exists(job_key(lease))
    # An event stored by a web process that died before it enqueued the drain it claimed.
    redis_client.delete(lease)
    pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE).empty()
    event = Event(id="evt_lost", source="shop", type="orders/create", external_id="lost", received_at=time.time(),
                  payload={"id": "lost"})
    claim = runtime.store.events.ingest(event, 3600, 3600, 1).drain
    assert claim is not None and redis_client.get(job_key(lease)) == claim.job
    assert jobs.sweep_pending_events() == 0  # its enqueue may yet come: the claim only becomes the short lease
    assert 0 < redis_client.pttl(lease) <= DRAIN_LEASE_MS and not redis_client.exists(job_key(lease))
    redis_client.delete(lease)  # ...which lapses, as a dead holder's
    assert jobs.sweep_pending_events() == 1
    work()
    assert runtime.store.events.get_event("evt_lost").status == "processed"


def test_a_drain_whose_job_a_worker_took_from_the_queue_and_died_with_gets_the_short_lease(
        runtime: Runtime, client, redis_client: redis.Redis) -> None:  # noqa: ANN001
    lease = one_partition(runtime)
    post_shop(client)
    [drain] = drain_jobs(runtime)
    # What a worker killed between taking the job and starting it leaves: still queued, no longer in the queue.
    queue = pipeline.queue(runtime.rq_connection, pipeline.EVENTS_QUEUE)
    redis_client.lrem(queue.key, 0, drain.id)
    assert drain.get_status() == JobStatus.QUEUED
    assert jobs.sweep_pending_events() == 0
    assert 0 < redis_client.pttl(lease) <= DRAIN_LEASE_MS and not redis_client.exists(job_key(lease))


def test_a_pushed_drain_waiting_in_the_queue_keeps_its_claim(runtime: Runtime, redis_client: redis.Redis) -> None:
    mid = sent_message(runtime)
    token = runtime.store.pushed.push(Pushed("receipt", receipt(201)))
    assert token is not None
    runtime.enqueuer.apply_pushed(token)
    redis_client.pexpire(keys.PUSHED_DRAIN, PUSHED_LEASE_MS // 3)  # past the short lease, the job still waits
    assert jobs.sweep_pushed() is False
    assert redis_client.pttl(keys.PUSHED_DRAIN) > PUSHED_LEASE_MS
    assert runtime.store.pushed.push(Pushed("receipt", receipt(201))) is None  # nor does a new push claim
    [job] = pipeline.queue(runtime.rq_connection, pipeline.SEND_QUEUE).jobs
    job.cancel()  # lost to RQ: taken over at once
    assert jobs.sweep_pushed() is True
    [heir] = pipeline.queue(runtime.rq_connection, pipeline.SEND_QUEUE).jobs
    assert heir.args != (token,)
    assert jobs.apply_pushed(*heir.args) == {"applied": 2, "more": 0}
    assert runtime.store.messages.message_state(mid) == "delivered"


def test_a_drain_going_on_to_its_next_batch_keeps_its_short_lease_and_hands_over_with_a_queued_claim(
        runtime: Runtime, client, redis_client: redis.Redis) -> None:  # noqa: ANN001
    lease = one_partition(runtime)
    for i in range(3):
        post_shop(client, webhook_id=f"h{i}", payload={"id": i})
    [drain] = drain_jobs(runtime)
    token, partition = drain.args
    claim = DrainClaim(partition, token)
    assert runtime.store.events.drain_keeper(claim).hold()  # the job starts
    going_on = runtime.store.events.finish_batch(claim, 1, hand_over=False)
    assert going_on.more == 1 and redis_client.pttl(lease) <= DRAIN_LEASE_MS
    assert not redis_client.exists(job_key(lease))  # no job is named: this one is still at work
    handing_over = runtime.store.events.finish_batch(claim, 1)
    assert handing_over.more == 1 and redis_client.pttl(lease) > DRAIN_LEASE_MS
    assert redis_client.get(job_key(lease)) == handing_over.next.job  # the claim waits for the chained job


# --- flushes -----------------------------------------------------------------------------------------------


def flush_jobs(rt: Runtime) -> list[Job]:
    return [j for j in pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE).jobs
            if j.func_name == pipeline.FLUSH_OUTBOX]


@pytest.fixture
def rt(runtime: Runtime, simulator: Simulator) -> Runtime:
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url, send_rate=1000.0)
    runtime._client = None
    return runtime


def kicked(rt: Runtime, redis_client: redis.Redis, n: int) -> tuple[list[str], Job]:
    """`n` queued messages and the flush job a kick enqueued for them, its claim naming it."""
    ids = queue_messages(rt, n)
    assert rt.enqueuer.kick("sms")
    [flush] = flush_jobs(rt)
    lease = keys.outbox_flush_key("sms")
    assert redis_client.get(lease) == flush.args[1] and redis_client.get(job_key(lease)) == flush.id
    return ids, flush


def test_a_flush_waiting_in_a_backlog_keeps_its_claim_and_no_second_flush_is_started(
        rt: Runtime, simulator: Simulator, work, redis_client: redis.Redis) -> None:  # noqa: ANN001
    lease = keys.outbox_flush_key("sms")
    ids, flush = kicked(rt, redis_client, 3)
    assert redis_client.pttl(lease) > FLUSH_LEASE_MS  # a queued claim, naming the job it was made for
    # The job still waits when the short lease would have lapsed: neither the recovery job, nor a kick, nor a
    # drain's own send claims the outbox again.
    redis_client.pexpire(lease, FLUSH_LEASE_MS // 3)
    redis_client.pexpire(job_key(lease), FLUSH_LEASE_MS // 3)
    jobs.recover_sending()
    assert redis_client.pttl(lease) > FLUSH_QUEUED_MS - 60_000  # renewed for the job still waiting
    assert not rt.enqueuer.kick("sms")
    jobs._send_planned({"sms": {}})  # a drain that queued nothing it wrote itself
    assert [j.id for j in flush_jobs(rt)] == [flush.id] and sends(simulator) == 0
    work((pipeline.SEND_QUEUE,))  # the job starts: its claim is the short lease, then given back
    assert states(rt, ids) == {"sent": 3} and sends(simulator) == 1
    assert not redis_client.exists(lease) and not redis_client.exists(job_key(lease))


def test_the_recovery_job_takes_over_a_flush_whose_job_ended_and_shortens_one_whose_job_started(
        rt: Runtime, simulator: Simulator, work, redis_client: redis.Redis) -> None:  # noqa: ANN001
    lease = keys.outbox_flush_key("sms")
    ids, flush = kicked(rt, redis_client, 2)
    flush.cancel()  # lost to RQ: nobody will flush for its claim
    jobs.recover_sending()
    [heir] = flush_jobs(rt)
    assert heir.id != flush.id and heir.args[1] != flush.args[1]
    assert redis_client.get(lease) == heir.args[1] and redis_client.get(job_key(lease)) == heir.id
    assert jobs.flush_outbox(*flush.args) == {"skipped": "another flush holds the lease"}  # run after all
    heir.set_status(JobStatus.STARTED)  # a worker took it, and died before it held the lease
    jobs.recover_sending()
    assert 0 < redis_client.pttl(lease) <= FLUSH_LEASE_MS and not redis_client.exists(job_key(lease))
    assert [j.id for j in flush_jobs(rt)] == [heir.id]  # it lapses as a dead holder's, then is claimed again
    redis_client.delete(lease)
    jobs.recover_sending()
    work((pipeline.SEND_QUEUE,))
    assert states(rt, ids) == {"sent": 2} and simulator.state.ledger == dict.fromkeys(ids, 1)


def test_resuming_leaves_a_running_flush_the_lease_and_its_hand_over_starts_the_next_flush_at_once(
        rt: Runtime, simulator: Simulator, work, redis_client: redis.Redis,  # noqa: ANN001
        monkeypatch: pytest.MonkeyPatch) -> None:
    lease = keys.outbox_flush_key("sms")
    ids = queue_messages(rt, 2)
    rt.store.outbox.pause("sms", time.time() + 600, "ClickSend answered 429")
    claim = rt.store.outbox.claim_flush("sms")
    assert claim is not None
    seen: list[tuple[Any, ...]] = []
    real = rt.sender

    class ResumedMidFlush:
        """The flush's sender: a person resumes the outbox just after the flush saw the pause."""

        def flush(self, channel: str, now: float, written: object = None) -> FlushOutcome:
            outcome = real().flush(channel, now)
            assert handover.resume(rt.store, rt.enqueuer, channel, "ops")
            seen.append((outcome.wait > jobs.SLEEP_UP_TO, outcome.paused, redis_client.get(lease),
                         len(flush_jobs(rt))))
            return outcome

    monkeypatch.setattr(rt, "sender", ResumedMidFlush)
    result = jobs.flush_outbox("sms", claim.token)
    # The running flush kept its lease (no second flush taking rate tokens beside it) ...
    assert seen == [(True, True, claim.token, 0)] and result["sent"] == 0
    # ... and, finding the pause lifted as it handed over, started its successor now, not in ten minutes.
    [now] = flush_jobs(rt)
    assert ScheduledJobRegistry(queue=pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE)).count == 0
    assert redis_client.get(lease) == now.args[1] != claim.token and redis_client.get(job_key(lease)) == now.id
    monkeypatch.setattr(rt, "sender", real)
    work((pipeline.SEND_QUEUE,))
    assert states(rt, ids) == {"sent": 2} and simulator.state.ledger == dict.fromkeys(ids, 1)


def test_resuming_supersedes_a_flush_an_older_version_left_waiting_out_the_pause(
        rt: Runtime, redis_client: redis.Redis) -> None:
    lease = keys.outbox_flush_key("sms")
    queue_messages(rt, 1)
    rt.store.outbox.pause("sms", time.time() + 600, "ClickSend answered 429")
    redis_client.set(lease, "older", px=660_000)  # its lease for the pause and a minute, naming no job
    resumed = rt.store.outbox.resume("sms")
    assert resumed.lifted and resumed.flush is not None
    assert redis_client.get(lease) == resumed.flush.token and redis_client.get(job_key(lease)) == resumed.flush.job


def test_a_keepers_renewal_after_its_flush_handed_over_leaves_the_queued_claim_alone(
        rt: Runtime, redis_client: redis.Redis) -> None:
    lease = keys.outbox_flush_key("sms")
    queue_messages(rt, 1)
    claim = rt.store.outbox.claim_flush("sms", for_job=False)
    assert claim is not None
    keeper = LeaseKeeper(redis_client, lease, claim.token, FLUSH_LEASE_MS, queued=True)
    assert keeper.hold()
    done = rt.store.outbox.finish_flush(claim)  # handed over while the keeper could still renew
    assert done.more == 1
    assert not keeper._renewed()  # the keeper's next renewal finds the lease another's, and leaves it alone
    assert redis_client.get(lease) == done.next.token and redis_client.pttl(lease) > FLUSH_LEASE_MS
    assert redis_client.get(job_key(lease)) == done.next.job


def test_a_flush_scheduled_to_wait_out_a_pause_keeps_its_claim_until_no_scheduler_is_left_to_start_it(
        rt: Runtime, simulator: Simulator, work, redis_client: redis.Redis) -> None:  # noqa: ANN001
    lease = keys.outbox_flush_key("sms")
    ids = queue_messages(rt, 2)
    rt.store.outbox.pause("sms", time.time() + 600, "ClickSend answered 429")
    assert rt.enqueuer.kick("sms")
    work((pipeline.SEND_QUEUE,))  # the flush finds the pause, and hands over to a flush at its end
    send = pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE)
    registry = ScheduledJobRegistry(queue=send)
    [waiting] = registry.get_job_ids()
    assert redis_client.get(job_key(lease)) == waiting and redis_client.pttl(lease) > 600_000
    jobs.recover_sending()  # its time is ahead: kept, nothing new started
    assert registry.get_job_ids() == [waiting] and send.count == 0
    assert redis_client.pttl(lease) > 600_000  # not shortened to a queued claim's usual length
    # Ten minutes on, its worker's RQ scheduler was killed meanwhile: the job sits in the schedule, overdue.
    redis_client.set(keys.outbox_pause_key("sms"), json.dumps({"until": time.time() - 60, "reason": "429"}))
    redis_client.zadd(registry.key, {waiting: time.time() - pipeline.STRANDED_AFTER - 60})
    jobs.recover_sending()  # taken over: a flush now, not when a scheduler comes back
    [heir] = flush_jobs(rt)
    assert redis_client.get(lease) == heir.args[1] and redis_client.get(job_key(lease)) == heir.id
    work((pipeline.SEND_QUEUE,))
    assert states(rt, ids) == {"sent": 2} and simulator.state.ledger == dict.fromkeys(ids, 1)
    stranded = Job.fetch(waiting, connection=rt.rq_connection)  # run late after all: nothing left to send
    assert jobs.flush_outbox(*stranded.args)["sent"] == 0 and sends(simulator) == 1
