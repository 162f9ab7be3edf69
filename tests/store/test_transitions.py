"""The one state-change primitive: claims and requeues obey the lifecycle table like every other move."""

from __future__ import annotations

import time

from tests.store.test_messages import doc
from workers.core.lifecycle import State
from workers.entry.runtime import Runtime
from workers.store.keys import outbox_key
from workers.store.transitions import Change


def test_a_requeue_the_lifecycle_forbids_moves_nothing(runtime: Runtime) -> None:
    messages, now = runtime.store.messages, time.time()
    messages.create_messages([doc("msg_t1", "queued", key=None)], now)
    runtime.store.outbox.claim_batch("sms", 10, now)
    messages.transition("msg_t1", State.FAILED, now, "refused")
    # failed → queued is not a lifecycle move, whatever state the caller expects the message in.
    assert runtime.store.outbox.requeue(["msg_t1"], now, "again", from_state=State.FAILED) == 0
    assert messages.message_state("msg_t1") == State.FAILED
    assert runtime.store.r.llen(outbox_key("sms")) == 0


def test_claim_and_requeue_keep_the_timeline_index_and_outbox_in_step(runtime: Runtime) -> None:
    messages, outbox, now = runtime.store.messages, runtime.store.outbox, time.time()
    messages.create_messages([doc(f"msg_t{i}", "queued", key=None) for i in (2, 3, 4)], now)
    messages.transition("msg_t3", State.CANCELLED, now, "cancelled while queued")
    assert outbox.claim_batch("sms", 10, now) == ["msg_t2", "msg_t4"]  # the cancelled one is dropped
    assert messages.messages_in_state(State.SENDING) == ["msg_t2", "msg_t4"]
    assert outbox.requeue(["msg_t2", "msg_t4"], now + 1, "429") == 2
    assert runtime.store.r.lrange(outbox_key("sms"), 0, -1) == ["msg_t2", "msg_t4"]
    assert messages.messages_in_state(State.QUEUED) == ["msg_t2", "msg_t4"]
    timeline = messages.get_message("msg_t2").timeline
    assert [(t["from"], t["to"], t["reason"]) for t in timeline[-2:]] == [
        ("queued", "sending", "claimed by a flush"), ("sending", "queued", "429")]
    assert messages.get_message("msg_t2").sending_since == now


def test_a_change_into_queued_is_appended_to_its_channels_outbox(runtime: Runtime) -> None:
    messages, now = runtime.store.messages, time.time()
    messages.create_messages([doc("msg_t5", "scheduled", key=None)], now)
    assert messages.apply_many([Change("msg_t5", State.QUEUED, "due")], now) == [True]
    assert runtime.store.r.lrange(outbox_key("sms"), 0, -1) == ["msg_t5"]
