"""Sending against a real Redis and the simulator over HTTP: batching, 429s, unknown outcomes, dead workers.

Time is passed in as `now`, so pauses and leases are tested without sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ROOT, SECRETS, Simulator, use_policies
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.flow.admission import day_of
from workers.flow.sender import SENDING_LEASE
from workers.store import keys
from workers.store.lease import job_key
from workers.store.outbox import FLUSH_LEASE_MS
from workers.wiring import pipeline
from workers.wiring.settings import DEFAULT_RECONCILE_GRACE


@pytest.fixture
def rt(runtime: Runtime, simulator: Simulator) -> Runtime:
    """The test runtime pointed at the simulator, with a generous rate limit."""
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url, send_rate=1000.0)
    runtime._client = None
    return runtime


def queue_messages(rt: Runtime, n: int, channel: str = "sms", numbers: list[str] | None = None,
                   prefix: str = "", **extra: object) -> list[str]:
    """Create `n` queued messages the way processing does, and return their ids."""
    now = time.time()
    docs = []
    for i in range(n):
        to = numbers[i % len(numbers)] if numbers else f"+614{i:08d}"
        docs.append(Message.from_json({
            "id": f"msg_{prefix}{channel}_{i:05d}", "event_id": "evt_test", "source": "shop", "rule": "r",
            "channel": channel, "state": State.QUEUED, "reasons": ["test"], "to": to, "body": f"Message {i}",
            "from": None, "country": "AU", "key": None, "send_at": None, **extra}))
    assert all(rt.store.messages.create_messages(docs, now))
    return [d.id for d in docs]


def states(rt: Runtime, ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc in rt.store.messages.get_messages(ids):
        assert doc is not None
        out[doc.state] = out.get(doc.state, 0) + 1
    return out


def sends(sim: Simulator) -> int:
    return sim.state.ledger_view()["calls"].get("/v3/sms/send", 0)


def drain(rt: Runtime, channel: str = "sms", start: float | None = None, step: float = 1.0,
          rounds: int = 200) -> float:
    """Flush until the outbox is empty, advancing the pretend clock over pauses; returns the final time."""
    sender = rt.sender()
    now = start or time.time()
    for _ in range(rounds):
        outcome = sender.flush(channel, now)
        if outcome.wait:
            now += outcome.wait + 0.01
        elif not outcome.claimed and not rt.store.outbox.outbox_length(channel):
            return now
        now += step / 1000
    raise AssertionError("outbox never drained")


def test_2500_queued_messages_go_out_in_3_calls(rt: Runtime, simulator: Simulator) -> None:
    ids = queue_messages(rt, 2500)
    drain(rt)
    assert sends(simulator) == 3
    assert states(rt, ids) == {"sent": 2500}
    ledger = simulator.state.ledger_view()
    assert (ledger["unique"], ledger["duplicates"]) == (2500, {})
    msg = rt.store.messages.get_message(ids[0])
    assert msg.provider_id and msg.price == Decimal("0.0792")
    assert [t["to"] for t in msg.timeline] == ["planned", "queued", "sending", "sent"]


def test_a_lone_message_goes_out_at_once_through_the_worker(rt: Runtime, simulator: Simulator, work) -> None:  # noqa: ANN001
    [mid] = queue_messages(rt, 1)
    assert rt.enqueuer.kick("sms")
    assert not rt.enqueuer.kick("sms")  # at most one flush pending per outbox
    work()
    assert rt.store.messages.message_state(mid) == "sent"
    assert sends(simulator) == 1


def test_429_storm_loses_nothing_sends_nothing_twice_and_spends_no_retries(rt: Runtime,
                                                                            simulator: Simulator) -> None:
    simulator.state.faults.rate_429 = 0.6
    ids = queue_messages(rt, 1500)
    rt.settings = rt.settings.with_(send_batch=100)
    drain(rt)
    assert states(rt, ids) == {"sent": 1500}
    ledger = simulator.state.ledger_view()
    assert (ledger["unique"], ledger["duplicates"]) == (1500, {})
    assert all(not d.retries for d in rt.store.messages.get_messages(ids))
    timeline = rt.store.messages.get_message(ids[0]).timeline
    assert all(t["to"] != "failed" for t in timeline)


def test_429_pauses_the_outbox_for_retry_after(rt: Runtime, simulator: Simulator) -> None:
    simulator.state.faults.rate_429 = 1.0
    ids = queue_messages(rt, 3)
    now = time.time()
    first = rt.sender().flush("sms", now)
    # Retry-After counts from ClickSend's answer, which came a little after the flush's `now`.
    assert first.requeued == 3 and first.paused and first.wait >= 1.0
    assert rt.store.outbox.paused("sms")["until"] == now + first.wait
    assert rt.sender().flush("sms", now + 0.5).claimed == 0  # still paused: nothing is claimed
    assert rt.store.r.lrange("hl:outbox:sms", 0, -1) == ids  # back in order, at the front


def test_500_after_acceptance_is_reconciled_without_a_duplicate(rt: Runtime, simulator: Simulator) -> None:
    simulator.state.faults.fail_after_accept = 1.0
    ids = queue_messages(rt, 50)
    now = time.time()
    outcome = rt.sender().flush("sms", now)
    assert outcome.unknown == 50
    assert states(rt, ids) == {"unknown": 50}
    simulator.state.faults.fail_after_accept = 0.0
    result = rt.sender().reconcile("sms", ids, now + 5)
    assert result == {"sent": 50, "requeued": 0, "waiting": 0}
    assert states(rt, ids) == {"sent": 50}
    assert simulator.state.ledger_view()["duplicates"] == {}
    assert rt.store.messages.get_message(ids[0]).timeline[-1]["reason"] == "found in ClickSend history"


def test_hanging_request_is_reconciled_without_a_duplicate(rt: Runtime, simulator: Simulator) -> None:
    simulator.state.faults.hang_rate, simulator.state.faults.hang_seconds = 1.0, 1.5
    ids = queue_messages(rt, 20)
    rt._client = None
    rt.settings = rt.settings.with_(clicksend_base_url=simulator.url, clicksend_timeout=0.5)  # shorter than the hang
    now = time.time()
    assert rt.sender().flush("sms", now).unknown == 20
    simulator.state.faults.hang_rate = 0.0
    rt.sender().reconcile("sms", ids, now + 5)
    assert states(rt, ids) == {"sent": 20}
    assert simulator.state.ledger_view()["duplicates"] == {}


@pytest.mark.parametrize("grace", [DEFAULT_RECONCILE_GRACE, 4.0])  # the default, and HOOKLINE_RECONCILE_GRACE=4s
def test_unknown_outcome_that_never_arrived_is_sent_again_after_the_grace_period(rt: Runtime, simulator: Simulator,
                                                                                 grace: float) -> None:
    rt.settings = rt.settings.with_(reconcile_grace=grace)
    simulator.state.faults.rate_500 = 1.0  # refused before accepting: nothing reached ClickSend
    ids = queue_messages(rt, 10)
    now = time.time()
    assert rt.sender().flush("sms", now).unknown == 10
    simulator.state.faults.rate_500 = 0.0
    early = rt.sender().reconcile("sms", ids, now + grace - 1)
    assert early == {"sent": 0, "requeued": 0, "waiting": 10}  # history may lag: do not resend yet
    late = rt.sender().reconcile("sms", ids, now + grace + 1)
    assert late["requeued"] == 10
    drain(rt, start=now + grace + 2)
    assert states(rt, ids) == {"sent": 10}
    assert simulator.state.ledger_view()["unique"] == 10
    assert simulator.state.ledger_view()["duplicates"] == {}


def test_per_message_outcomes(rt: Runtime, simulator: Simulator) -> None:
    simulator.state.faults.invalid_numbers = ["+61400000001"]
    simulator.state.faults.throttled_numbers = ["+61400000002"]
    ids = queue_messages(rt, 3, numbers=["+61400000000", "+61400000001", "+61400000002"])
    now = time.time()
    outcome = rt.sender().flush("sms", now)
    assert (outcome.sent, outcome.failed, outcome.retried) == (1, 1, 1)
    ok, invalid, throttled = rt.store.messages.get_messages(ids)
    assert ok.state == "sent"
    assert (invalid.state, invalid.error) == ("failed", "INVALID_RECIPIENT")
    assert throttled.state == "scheduled" and throttled.retries == 1
    assert throttled.send_at > now


def test_throttled_too_often_fails_with_the_reason(rt: Runtime, simulator: Simulator) -> None:
    simulator.state.faults.throttled_numbers = ["+61400000000"]
    [mid] = queue_messages(rt, 1, numbers=["+61400000000"])
    now = time.time()
    for _ in range(6):
        rt.sender().flush("sms", now)
        now += 1000
        rt.processing.fire(mid, now)
    msg = rt.store.messages.get_message(mid)
    assert msg.state == "failed"
    assert msg.timeline[-1]["reason"] == "THROTTLED after 5 retries"


def test_insufficient_credit_pauses_the_outbox_and_raises_an_alert(rt: Runtime, simulator: Simulator) -> None:
    simulator.state.faults.no_credit_numbers = ["+61400000001"]
    ids = queue_messages(rt, 2, numbers=["+61400000000", "+61400000001"])
    now = time.time()
    outcome = rt.sender().flush("sms", now)
    assert (outcome.sent, outcome.requeued) == (1, 1)
    assert states(rt, ids) == {"sent": 1, "queued": 1}
    assert "insufficient_credit" in rt.store.account.alerts()
    assert rt.sender().flush("sms", now + 10).wait > 0  # paused instead of burning through the queue
    assert sends(simulator) == 1


def test_cancelled_messages_are_skipped_by_the_flush(rt: Runtime, simulator: Simulator) -> None:
    ids = queue_messages(rt, 3)
    rt.store.messages.transition(ids[1], State.CANCELLED, time.time(), "cancelled by key")
    drain(rt)
    assert states(rt, ids) == {"sent": 2, "cancelled": 1}
    assert ids[1] not in simulator.state.ledger


def test_mms_is_grouped_by_media_file(rt: Runtime, simulator: Simulator) -> None:
    a = queue_messages(rt, 2, channel="mms", subject="Ticket", media_file="https://x/a.jpg")
    b = queue_messages(rt, 1, channel="mms", prefix="b", subject="Ticket", media_file="https://x/b.jpg")
    outcome = rt.sender().flush("mms", time.time())  # one flush, one call per media file
    assert (outcome.claimed, outcome.calls, outcome.sent) == (3, 2, 3)
    assert states(rt, a + b) == {"sent": 3}
    assert simulator.state.ledger_view()["calls"]["/v3/mms/send"] == 2


def test_token_bucket_is_shared_and_refills(rt: Runtime) -> None:
    now = 1000.0
    assert rt.store.outbox.take_token(2.0, 2.0, now) == 0
    assert rt.store.outbox.take_token(2.0, 2.0, now) == 0
    assert rt.store.outbox.take_token(2.0, 2.0, now) == pytest.approx(0.5)
    assert rt.store.outbox.take_token(2.0, 2.0, now + 0.5) == 0


def test_worker_killed_mid_flush_every_message_is_sent_exactly_once(rt: Runtime, simulator: Simulator,
                                                                     tmp_path: Path) -> None:
    ids = queue_messages(rt, 400)
    simulator.state.faults.hang_rate, simulator.state.faults.hang_seconds = 1.0, 30.0
    assert rt.enqueuer.kick("sms")
    env = {**os.environ, **SECRETS, "REDIS_URL": rt.settings.redis_url, "CLICKSEND_BASE_URL": simulator.url,
           "HOOKLINE_RULES_DIR": str(ROOT / "rules"), "HOOKLINE_SEND_BATCH": "250"}
    worker = subprocess.Popen([sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", rt.settings.redis_url,
                               "hookline-send"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while simulator.state.ledger_view()["accepted"] < 250:  # ClickSend has the first batch; the reply hangs
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    simulator.state.faults.hang_rate = 0.0
    assert states(rt, ids) == {"sending": 250, "queued": 150}

    later = time.time() + SENDING_LEASE + 1
    rt.sender().recover(later)  # the cron job: lease expired → unknown → history → sent
    drain(rt, start=later)
    assert states(rt, ids) == {"sent": 400}
    ledger = simulator.state.ledger_view()
    assert (ledger["unique"], ledger["accepted"], ledger["duplicates"]) == (400, 400, {})


def test_recovery_job_restarts_a_flush_whose_job_was_lost(rt: Runtime, simulator: Simulator, work) -> None:  # noqa: ANN001
    ids = queue_messages(rt, 5)  # queued, but nobody kicked the outbox (a crash right after queueing)
    jobs.recover_sending()
    work()
    assert states(rt, ids) == {"sent": 5}


def test_a_flush_job_within_its_budget_sends_every_waiting_batch_and_chains_no_job(rt: Runtime,
                                                                                  simulator: Simulator) -> None:
    rt.settings = rt.settings.with_(send_batch=2)
    ids = queue_messages(rt, 5)
    claim = rt.store.outbox.claim_flush("sms")
    result = jobs.flush_outbox("sms", claim.token)
    # One fork for three batches: the counts of all three, nothing left for another job, the lease given back.
    assert (result["claimed"], result["calls"], result["sent"], result["wait"]) == (5, 3, 5, 0)
    assert states(rt, ids) == {"sent": 5} and sends(simulator) == 3
    assert pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE).count == 0
    assert rt.store.outbox.flush_token("sms") is None


def test_a_flush_job_past_its_budget_hands_the_rest_to_a_new_job_under_a_queued_claim_of_its_own(
        rt: Runtime, simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "ROUND_BUDGET", 0)
    rt.settings = rt.settings.with_(send_batch=2)
    ids = queue_messages(rt, 5)
    claim = rt.store.outbox.claim_flush("sms")
    assert jobs.flush_outbox("sms", claim.token)["sent"] == 2
    [chained] = pipeline.queue(rt.rq_connection, pipeline.SEND_QUEUE).jobs
    assert chained.args[0] == "sms" and chained.args[1] != claim.token and chained.kwargs == {}
    # The lease waits for the chained job (named, and longer than the short lease) under its token: a retry
    # of the job that handed over finds it another's.
    lease = keys.outbox_flush_key("sms")
    assert rt.store.r.get(lease) == chained.args[1] and rt.store.r.get(job_key(lease)) == chained.id
    assert rt.store.r.pttl(lease) > FLUSH_LEASE_MS
    assert jobs.flush_outbox("sms", claim.token) == {"skipped": "another flush holds the lease"}
    assert states(rt, ids) == {"sent": 2, "queued": 3}


def test_a_throttled_retry_is_sent_not_taken_for_its_own_duplicate(rt: Runtime, simulator: Simulator) -> None:
    # Admission already took the duplicate marker, the rate slot and the budget for this message; its retry
    # must not take them again (it would be suppressed as a duplicate of itself and charged twice).

    use_policies(rt, "policies:\n  default: {duplicate_window: 10m, max_per_recipient: {count: 1, per: 1h},"
                     " daily_budget: 0.10}\n  paging: {}\n")
    doc = Message.from_json({
        "id": "msg_thr", "event_id": "evt_t", "source": "shop", "rule": "r", "channel": "sms", "state": "planned",
        "reasons": [], "to": "+61400000002", "body": "hi", "country": "AU", "segments": 1, "encoding": "GSM-7",
        "key": None, "send_at": None, "policy": "default"})
    outcome = rt.admission.admit(doc, time.time())
    assert outcome.state == "queued"
    rt.store.messages.create_messages([doc.but(state=State.QUEUED, reserved=outcome.estimate)], time.time())
    simulator.state.faults.throttled_numbers = ["+61400000002"]
    now = time.time()
    assert rt.sender().flush("sms", now).retried == 1
    simulator.state.faults.throttled_numbers = []
    assert rt.processing.fire("msg_thr", now + 700)
    drain(rt, start=now + 701)
    msg = rt.store.messages.get_message("msg_thr")
    assert msg.state == "sent"
    assert simulator.state.ledger == {"msg_thr": 1}
    # reserved once, settled once at the real price
    assert rt.store.reservations.spent(day_of(rt.settings.timezone, now)) == outcome.estimate


def test_spend_is_settled_and_refunded_on_the_day_it_was_reserved(rt: Runtime, simulator: Simulator) -> None:
    # Reserved before midnight, sent after: the real price replaces the estimate on the reservation's day, and a
    # failed send gives the estimate back to that day too, so neither day is over- or under-counted.
    ok, bad = queue_messages(rt, 2, reserved="0.50", reserved_day="2026-01-01")
    rt.store.reservations.adjust_spend("2026-01-01", Decimal("1.00"))  # what admission reserved for the two that day
    simulator.state.faults.invalid_numbers = [rt.store.messages.get_message(bad).to]
    now = time.time()
    out = rt.sender().flush("sms", now)
    assert (out.sent, out.failed) == (1, 1)
    price = rt.store.messages.get_message(ok).price
    assert rt.store.reservations.spent("2026-01-01") == price
    assert rt.store.reservations.spent(day_of(rt.settings.timezone, now)) == 0


def test_a_request_refused_whole_is_narrowed_until_only_the_bad_message_fails(rt: Runtime,
                                                                               simulator: Simulator) -> None:
    ids = queue_messages(rt, 40)
    simulator.state.faults.bad_request_numbers = [rt.store.messages.get_message(ids[27]).to]
    first = rt.sender().flush("sms", time.time())
    assert (first.requeued, first.narrowed, first.failed) == (40, 20, 0)
    drain(rt)
    assert states(rt, ids) == {"sent": 39, "failed": 1}
    failed = rt.store.messages.get_message(ids[27])
    assert failed.state == "failed"
    assert "messages.0.to: The to field is invalid." in failed.timeline[-1]["reason"]
    assert len(simulator.state.ledger) == 39 and ids[27] not in simulator.state.ledger
    # 40 refused, 0-19 sent, 20-39 / 20-29 refused, 20-24 sent, 25-29 refused, 25-26 sent, 27-28 / 27 refused
    # (27 fails alone), then the other 12 in one call at full size again.
    assert sends(simulator) == 10
    assert rt.store.outbox.batch_limit("sms") is None


def test_when_every_message_is_refused_each_fails_alone_with_the_reason(rt: Runtime, simulator: Simulator) -> None:
    numbers = [f"+6140000{i:04d}" for i in range(6)]
    ids = queue_messages(rt, 6, numbers=numbers)
    simulator.state.faults.bad_request_numbers = numbers
    drain(rt)
    assert states(rt, ids) == {"failed": 6}
    assert simulator.state.ledger == {}
    assert all("The to field is invalid" in rt.store.messages.get_message(i).timeline[-1]["reason"] for i in ids)


def test_the_search_survives_a_rate_limit_that_allows_one_call_at_a_time(rt: Runtime, simulator: Simulator) -> None:
    rt.settings = rt.settings.with_(send_rate=1.0)  # a bucket of one call: every flush is one request
    ids = queue_messages(rt, 8)
    simulator.state.faults.bad_request_numbers = [rt.store.messages.get_message(ids[0]).to]
    drain(rt)
    assert states(rt, ids) == {"sent": 7, "failed": 1}
    assert rt.store.messages.message_state(ids[0]) == "failed"


def test_a_message_changed_since_this_process_wrote_it_is_sent_as_redis_holds_it(rt: Runtime,
                                                                                 simulator: Simulator) -> None:
    # A drain hands its send what it wrote (jobs._send_planned); a record changed since is read, not trusted.
    simulator.state.faults.throttled_numbers = ["+61400000002"]
    now = time.time()
    doc = Message.from_json({"id": "msg_changed", "event_id": "evt_c", "source": "shop", "rule": "r",
                             "channel": "sms", "state": "queued", "to": "+61400000002", "body": "hi",
                             "country": "AU", "reserved": "0.0792", "reserved_day": day_of("UTC", now)})
    [written] = rt.store.messages.write_messages([doc], now)
    assert written is not None
    # Another flush sends it first, is told THROTTLED, and its retry is queued again before this one claims it.
    assert rt.sender().flush("sms", now).retried == 1
    assert rt.processing.fire("msg_changed", now + 700)
    assert rt.sender().flush("sms", now + 701, {written.id: written}).retried == 1
    msg = rt.store.messages.get_message("msg_changed")
    assert msg.state == "scheduled"
    assert msg.retries == 2  # its record's first retry counted, not the none it was written with
    assert simulator.state.ledger_view()["calls"].get("/v3/sms/send") == 2
