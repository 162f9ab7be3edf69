"""Writes a failover must not lose (HOOKLINE_MIN_REPLICAS, 1 with a Sentinel URL): each step whose next move
cannot be taken back waits for a replica first, and on a Redis where none acknowledges it does not take that
move. An event is answered 503, not 202 (its retry is then a duplicate); a claimed batch is put back, not sent;
polled receipts are not marked read at ClickSend; a pushed receipt is answered 503, so ClickSend pushes it again.
(tests/faults/test_sentinel_failover.py shows the same with a real failover.)"""

from __future__ import annotations

import time

import pytest
import redis

from tests.conftest import RECEIPT_TOKEN, Simulator
from tests.flow.test_sender import queue_messages
from tests.test_end_to_end import post_order
from tests.waiting import wait_for
from tests.webhooks.test_ingest import post_shop
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.errors import NotReplicated
from workers.flow.sender import REPLICA_RETRY
from workers.store import Store
from workers.wiring import pipeline


def needing_a_replica(rt: Runtime) -> None:
    """Make `rt`'s store demand one replica, on the test Redis, which has none."""
    rt.store = Store(rt.store.r, rt.settings.message_ttl, min_replicas=1)


def test_the_barrier_waits_for_a_replica_only_when_one_is_required(redis_client: redis.Redis) -> None:
    Store(redis_client, 3600).replicated()  # none required: returns at once
    with pytest.raises(NotReplicated) as caught:
        Store(redis_client, 3600, min_replicas=1).replicated()
    assert (caught.value.required, caught.value.acknowledged) == (1, 0)


def test_an_event_no_replica_acknowledged_is_503_and_its_retry_a_duplicate(e2e: Runtime, client) -> None:  # noqa: ANN001
    plain = e2e.store
    needing_a_replica(e2e)
    refused = post_shop(client, webhook_id="repl-1")
    assert refused.status_code == 503
    assert refused.json == {"error": "unavailable", "message": "not yet on a replica, so not accepted; try again"}
    e2e.store = plain
    retry = post_shop(client, webhook_id="repl-1")
    assert (retry.status_code, retry.json["duplicate"]) == (200, True)  # the primary kept it after all


def test_a_claimed_batch_no_replica_acknowledged_goes_back_unsent(e2e: Runtime, client, work,  # noqa: ANN001
                                                                  simulator: Simulator) -> None:
    event_id = post_order(client, "repl-2")
    plain = e2e.store
    needing_a_replica(e2e)
    # Planned and queued; the drain's send claims, finds no replica, puts the batch back, runs again in 1 s.
    work((pipeline.EVENTS_QUEUE,))
    [mid] = plain.messages.event_message_ids(event_id)
    assert simulator.state.ledger == {}
    assert plain.messages.message_state(mid) == "queued"
    assert plain.outbox.outbox_length("sms") == 1
    e2e.store = plain
    wait_for(lambda: work((pipeline.SEND_QUEUE,), with_scheduler=True) or simulator.state.ledger,
             "the flush to run again and send", timeout=30, interval=0.5)
    assert simulator.state.ledger == {mid: 1}


def test_receipts_no_replica_acknowledged_are_not_marked_read(e2e: Runtime, client, work,  # noqa: ANN001
                                                              simulator: Simulator) -> None:
    post_order(client, "repl-3")
    work()
    wait_for(lambda: simulator.state.unread_receipts("sms"), "the simulator's receipt to become final")
    later = time.time() + 120  # old enough to be marked read
    plain = e2e.store
    needing_a_replica(e2e)
    with pytest.raises(NotReplicated):
        e2e.feedback.poll_receipts(later)
    assert simulator.state.unread_receipts("sms")  # ClickSend will list it again
    e2e.store = plain
    assert e2e.feedback.poll_receipts(later) == {"duplicate": 1}  # applied the first time, kept by the primary
    assert not simulator.state.unread_receipts("sms")


def test_a_pushed_receipt_no_replica_acknowledged_is_503(e2e: Runtime, client, work,  # noqa: ANN001
                                                         simulator: Simulator) -> None:
    post_order(client, "repl-4")
    work()
    e2e.store.account.remember_account(user_id=123456)
    receipt = wait_for(lambda: simulator.state.unread_receipts("sms"), "the simulator's receipt to become final")[0]
    form = {k: "" if v is None else str(v) for k, v in receipt.items()} | {"user_id": "123456"}
    needing_a_replica(e2e)
    assert client.post(f"/clicksend/receipts/{RECEIPT_TOKEN}", data=form).status_code == 503


def test_a_batch_waiting_for_a_replica_is_left_to_the_scheduler_not_slept_for(e2e: Runtime) -> None:
    queue_messages(e2e, 1)
    needing_a_replica(e2e)
    outcome = e2e.sender().flush("sms", time.time())
    assert (outcome.wait, outcome.requeued) == (REPLICA_RETRY, 1)
    assert not jobs._short(outcome)  # replicas down for a while must not keep a worker asleep, flush after flush
