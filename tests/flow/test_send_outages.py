"""Sending when ClickSend is not all there, against a real Redis and the simulator over HTTP: unreachable during
a flush, a message left out of a send reply, history unavailable while reconciling. Nothing may be lost, and
nothing sent twice.

Time is passed in as `now` where a pause or a grace period would otherwise have to be waited for.
"""

from __future__ import annotations

import time

import pytest
import requests
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry

from tests.conftest import Simulator
from tests.flow.test_sender import drain, queue_messages, sends, states
from workers.clicksend.client import ClickSendClient
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.store.keys import outbox_key
from workers.tools.localredis import free_port
from workers.wiring import handover, pipeline
from workers.wiring.settings import DEFAULT_RECONCILE_GRACE


@pytest.fixture
def rt(runtime: Runtime, simulator: Simulator) -> Runtime:
    """The test runtime pointed at the simulator, with a generous rate limit."""
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url, send_rate=1000.0)
    runtime._client = None
    return runtime


def closed_port_url() -> str:
    """A loopback URL nobody listens on: connections to it are refused."""
    return f"http://127.0.0.1:{free_port()}"


def scheduled_send_jobs(rt: Runtime, func: str) -> list[tuple[int, tuple]]:
    """(when, args) of the jobs RQ will run later on the send queue for `func`, soonest first."""
    registry = ScheduledJobRegistry(queue=pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE))
    found = []
    for job_id in registry.get_job_ids():
        job = pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE).fetch_job(job_id)
        if job is not None and job.func_name == func:
            found.append((int(registry.get_scheduled_time(job_id).timestamp()), tuple(job.args)))
    return sorted(found)


def test_clicksend_unreachable_during_a_flush_puts_the_batch_back_and_pauses(rt: Runtime, simulator: Simulator,
                                                                              work) -> None:  # noqa: ANN001
    ids = queue_messages(rt, 5)
    rt.settings = rt.settings.with_(clicksend_base_url=closed_port_url())  # connection refused
    rt._client = None
    assert rt.enqueuer.kick("sms")
    started = time.time()
    work((pipeline.SEND_QUEUE,))  # the flush job: claims the five, cannot connect
    assert states(rt, ids) == {"queued": 5}
    assert rt.store.r.lrange(outbox_key("sms"), 0, -1) == ids  # back at the front, in order
    for msg in rt.store.messages.get_messages(ids):
        timeline = rt.store.messages.get_message(msg.id).timeline
        assert [(t["from"], t["to"]) for t in timeline[-2:]] == [("queued", "sending"), ("sending", "queued")]
        assert timeline[-1]["reason"].startswith("ClickSend unreachable (connection failed")
        assert msg.retries == 0  # an outage spends no retry
    pause = rt.store.outbox.paused("sms")
    assert pause["until"] > started and pause["reason"].startswith("ClickSend unreachable")
    assert rt.sender().flush("sms", started).claimed == 0  # paused: nothing is claimed meanwhile
    [(when, args)] = scheduled_send_jobs(rt, pipeline.FLUSH_OUTBOX)  # the flush comes back by itself
    assert when == int(pause["until"]) and args[0] == "sms"
    assert simulator.state.ledger_view()["calls"] == {}  # nothing reached ClickSend

    rt.settings = rt.settings.with_(clicksend_base_url=simulator.url)  # reachable again
    rt._client = None
    drain(rt, start=pause["until"])
    assert states(rt, ids) == {"sent": 5}
    assert simulator.state.ledger == dict.fromkeys(ids, 1)  # each exactly once
    assert sends(simulator) == 1
    assert rt.store.outbox.outbox_length("sms") == 0


def test_a_message_missing_from_the_send_reply_is_reconciled_through_history_before_any_resend(
        rt: Runtime, simulator: Simulator) -> None:
    ids = queue_messages(rt, 3)
    left_out = ids[1]
    number = rt.store.messages.get_message(left_out).to
    assert requests.put(f"{simulator.url}/_sim/faults", json={"omitted_numbers": [number]}, timeout=5).ok
    now = time.time()
    outcome = rt.sender().flush("sms", now)
    assert (outcome.sent, outcome.unknown, outcome.failed) == (2, 1, 0)
    msg = rt.store.messages.get_message(left_out)
    assert (msg.state, msg.timeline[-1]["reason"]) == ("unknown", "not in ClickSend's reply")
    assert simulator.state.ledger == dict.fromkeys(ids, 1)  # ClickSend has it; we do not know that yet
    [(when, args)] = scheduled_send_jobs(rt, pipeline.RECONCILE)
    assert args == ("sms", [left_out]) and when >= int(now)
    drain(rt, start=now + 1)  # flushes meanwhile do not send it again: it is not in the outbox
    assert sends(simulator) == 1

    assert jobs.reconcile_messages(*args) == {"sent": 1, "requeued": 0, "waiting": 0}  # what RQ will run
    msg = rt.store.messages.get_message(left_out)
    [accepted] = [s for s in simulator.state.sent if s.custom_string == left_out]
    assert (msg.state, msg.provider_id) == ("sent", accepted.message_id)
    assert msg.timeline[-1]["reason"] == "found in ClickSend history"
    assert rt.store.messages.find_many([(None, accepted.message_id)])[0].id == left_out  # receipts will find it
    assert simulator.state.ledger == dict.fromkeys(ids, 1)
    assert simulator.state.ledger_view()["duplicates"] == {}


@pytest.mark.parametrize("outage", ["500", "refused"])
def test_history_unavailable_during_reconcile_reschedules_it_and_resends_nothing(rt: Runtime, simulator: Simulator,
                                                                                 outage: str) -> None:
    simulator.state.faults.fail_after_accept = 1.0  # accepted, then a 500: every outcome unknown
    ids = queue_messages(rt, 10)
    now = time.time()
    assert rt.sender().flush("sms", now).unknown == 10
    simulator.state.faults.fail_after_accept = 0.0
    if outage == "500":
        simulator.state.faults.rate_500 = 1.0
        sender = rt.sender()
    else:
        sender = rt.sender(ClickSendClient(closed_port_url()))
    attempts = [now + 5, now + DEFAULT_RECONCILE_GRACE + 60]  # even long past the grace, "absent" is never concluded
    for at in attempts:
        assert sender.reconcile("sms", ids, at) == {"sent": 0, "requeued": 0, "waiting": 10}
    assert states(rt, ids) == {"unknown": 10}
    assert rt.store.outbox.outbox_length("sms") == 0  # nothing put back to be sent again
    reconciles = scheduled_send_jobs(rt, pipeline.RECONCILE)
    assert [args for _, args in reconciles] == [("sms", ids)] * 3  # the flush's, then one per failed attempt
    assert all(when > int(at) for (when, _), at in zip(reconciles[1:], attempts, strict=True))
    ledger = simulator.state.ledger_view()
    assert (ledger["accepted"], ledger["unique"]) == (10, 10)

    simulator.state.faults.rate_500 = 0.0  # history answers again
    result = rt.sender().reconcile("sms", ids, now + DEFAULT_RECONCILE_GRACE + 90)
    assert result == {"sent": 10, "requeued": 0, "waiting": 0}
    assert states(rt, ids) == {"sent": 10}
    assert simulator.state.ledger_view()["duplicates"] == {}
    assert simulator.state.ledger_view()["accepted"] == 10


def test_resuming_a_paused_outbox_supersedes_the_flush_waiting_out_the_pause(
        rt: Runtime, simulator: Simulator, work, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 0)  # each flush job sends one batch, then chains the next
    rt.settings = rt.settings.with_(send_batch=2)  # two flushes' worth: the resumed chain is still going...
    ids = queue_messages(rt, 4)
    rt.store.outbox.pause("sms", time.time() + 600, "ClickSend answered 429")
    assert rt.enqueuer.kick("sms")
    work((pipeline.SEND_QUEUE,))  # the flush finds the pause and comes back at its end
    [(_, waiting)] = scheduled_send_jobs(rt, pipeline.FLUSH_OUTBOX)
    assert handover.resume(rt.store, rt.enqueuer, "sms", "ops")
    queue = pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE)
    [resumed] = queue.jobs
    assert resumed.args[0] == "sms" and resumed.args[1] != waiting[1]  # a lease of its own
    SimpleWorker([queue], connection=rt.rq_connection).work(burst=True, max_jobs=1)
    assert states(rt, ids) == {"sent": 2, "queued": 2} and len(queue.jobs) == 1  # ...and chained its next
    # ...when the time of the flush that waited out the pause comes: the lease is not its own any more.
    assert jobs.flush_outbox(*waiting) == {"skipped": "another flush holds the lease"}
    work((pipeline.SEND_QUEUE,))
    assert states(rt, ids) == {"sent": 4}
    assert simulator.state.ledger == dict.fromkeys(ids, 1) and sends(simulator) == 2
    assert not handover.resume(rt.store, rt.enqueuer, "sms", "ops")  # not paused: nothing to resume
