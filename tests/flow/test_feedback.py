"""Applying receipts and replies: idempotent, never backwards, and only to messages we really sent."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from tests.messages import message
from workers.core.lifecycle import State
from workers.entry.runtime import Runtime
from workers.store.messages import Change


def sent_message(rt: Runtime, mid: str = "msg_fb1", provider_id: str = "PROV-1", state: str = "sent") -> str:
    doc = message(id=mid, event_id="evt_fb", state="queued", to="+61411111111", body="hi")
    rt.store.messages.create_messages([doc], time.time())
    rt.store.outbox.claim_batch("sms", 10, time.time())
    if state == "sent":
        rt.store.messages.apply_many([Change(mid, State.SENT, "accepted", {"provider_id": provider_id})], time.time())
        rt.store.feedback.index_provider_ids({provider_id: mid})
    else:
        rt.store.messages.apply_many([Change(mid, State.UNKNOWN, "timeout")], time.time())
    return mid


def receipt(code: int, mid: str = "msg_fb1", provider_id: str = "PROV-1") -> dict:
    return {"message_id": provider_id, "custom_string": mid, "status_code": code, "timestamp": int(time.time())}


def test_duplicate_receipts_apply_once(runtime: Runtime) -> None:
    mid = sent_message(runtime)
    assert runtime.feedback.apply_receipt(receipt(201), time.time(), "poll") == "delivered"
    assert runtime.feedback.apply_receipt(receipt(201), time.time(), "push") == "duplicate"
    log = runtime.store.messages.get_message(mid).timeline
    assert [e["to"] for e in log if e.get("to") == "delivered"] == ["delivered"]


def test_out_of_order_receipts_never_move_backwards(runtime: Runtime) -> None:
    mid = sent_message(runtime)
    assert runtime.feedback.apply_receipt(receipt(201), time.time(), "push") == "delivered"
    assert runtime.feedback.apply_receipt(receipt(200), time.time(), "poll") == "pending"  # a late "sent"
    assert runtime.feedback.apply_receipt(receipt(301), time.time(), "poll") == "duplicate"
    assert runtime.store.messages.message_state(mid) == "delivered"


def test_pending_then_final(runtime: Runtime) -> None:
    mid = sent_message(runtime)
    assert runtime.feedback.apply_receipt(receipt(200), time.time(), "poll") == "pending"
    assert runtime.store.messages.message_state(mid) == "sent"
    assert runtime.feedback.apply_receipt(receipt(301), time.time(), "poll") == "undelivered"
    msg = runtime.store.messages.get_message(mid)
    assert msg.state == "undelivered" and msg.receipt["status_code"] == 301


def test_unknown_message_ids_are_counted_not_errors(runtime: Runtime) -> None:
    assert runtime.feedback.apply_receipt(receipt(201, "msg_nope", "PROV-X"), time.time(), "poll") == "unknown"
    assert runtime.feedback.apply_receipt({"status_code": 201}, time.time(), "poll") == "unknown"
    assert runtime.store.r.get("hl:stats:receipts_unknown") == "2"


def test_custom_string_must_match_the_provider_id(runtime: Runtime) -> None:
    mid = sent_message(runtime)
    forged = receipt(301, mid, "SOMEONE-ELSES")
    assert runtime.feedback.apply_receipt(forged, time.time(), "push") == "unknown"
    assert runtime.store.messages.message_state(mid) == "sent"


def test_receipt_for_a_message_whose_send_outcome_was_unknown_settles_it(runtime: Runtime) -> None:
    mid = sent_message(runtime, state="unknown")
    assert runtime.feedback.apply_receipt(receipt(201, mid, "PROV-9"), time.time(), "push") == "delivered"
    msg = runtime.store.messages.get_message(mid)
    assert (msg.state, msg.provider_id) == ("delivered", "PROV-9")
    assert runtime.store.messages.unreported(time.time() + 1) == []  # both `sent` and `delivered` were reported
    assert runtime.store.messages.find_many([(None, "PROV-9")])[0].id == mid  # later receipts by ClickSend's id find it


def test_inbound_is_applied_once_and_linked_to_its_message(runtime: Runtime) -> None:
    mid = sent_message(runtime)
    item = {"message_id": "IN-1", "from": "+61411111111", "body": "STOP", "original_message_id": "PROV-1",
            "custom_string": mid, "timestamp": int(time.time())}
    assert runtime.feedback.apply_inbound(item, time.time(), "push") == "opted_out"
    assert runtime.feedback.apply_inbound(item, time.time(), "push") == "duplicate"
    assert list(runtime.store.optouts.optouts()) == ["+61411111111"]
    replies = [e for e in runtime.store.messages.get_message(mid).timeline if e.get("kind") == "reply"]
    assert [r["keyword"] for r in replies] == ["stop"]
    start = item | {"message_id": "IN-2", "body": "start"}
    assert runtime.feedback.apply_inbound(start, time.time(), "poll") == "opted_in"
    assert runtime.store.optouts.optouts() == {}


def test_final_messages_expire_after_the_retention_and_leave_the_indexes(runtime: Runtime) -> None:
    mid = sent_message(runtime)
    assert runtime.store.r.pttl(f"hl:msg:{mid}") == -1  # still changing: kept
    runtime.feedback.apply_receipt(receipt(201), time.time(), "poll")
    ttl = runtime.store.r.pttl(f"hl:msg:{mid}")
    assert 0 < ttl <= runtime.settings.message_ttl * 1000
    assert 0 < runtime.store.r.pttl(f"hl:msg:{mid}:log") <= runtime.settings.message_ttl * 1000
    assert runtime.store.messages.trim_state_indexes(time.time() - 60) == 0  # too recent
    assert runtime.store.messages.trim_state_indexes(time.time() + 1) == 1
    assert runtime.store.messages.messages_in_state(State.DELIVERED) == []


class RoundTrips:
    """Counts what reaches Redis over a connection: one packed send is one round trip (a pipeline included)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        send = redis.connection.Connection.send_packed_command

        def counted(conn: redis.connection.Connection, command: object, check_health: bool = True) -> None:
            self.count += 1
            send(conn, command, check_health)

        monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counted)

    def of(self, work: Callable[[], object]) -> int:
        before = self.count
        work()
        return self.count - before


def test_a_page_of_receipts_takes_as_many_round_trips_whatever_its_size(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    small = [sent_message(runtime, f"msg_small{i}", f"PROV-S{i}") for i in range(3)]
    large = [sent_message(runtime, f"msg_large{i}", f"PROV-L{i}") for i in range(60)]
    trips = RoundTrips(monkeypatch)
    outcomes: list[list[str]] = []
    pages = [[receipt(201, f"msg_small{i}", f"PROV-S{i}") for i in range(3)],
             [receipt(201, f"msg_large{i}", f"PROV-L{i}") for i in range(60)]]
    counts = [trips.of(lambda page=page: outcomes.append(runtime.feedback.apply_receipts(page, time.time(), "poll")))
              for page in pages]
    assert outcomes == [["delivered"] * 3, ["delivered"] * 60]
    assert counts[0] == counts[1] <= 5
    assert {runtime.store.messages.message_state(mid) for mid in small + large} == {"delivered"}


def test_each_receipt_of_a_mixed_page_gets_its_own_outcome(runtime: Runtime) -> None:
    delivered, pending, undelivered, forged = (sent_message(runtime, f"msg_mix{i}", f"PROV-M{i}") for i in range(4))
    proved = sent_message(runtime, "msg_mix4", state="unknown")
    page = [receipt(201, delivered, "PROV-M0"), receipt(201, delivered, "PROV-M0"), receipt(200, pending, "PROV-M1"),
            receipt(301, undelivered, "PROV-M2"), receipt(201, "msg_nope", "PROV-X"),
            receipt(301, forged, "SOMEONE-ELSES"), receipt(201, proved, "PROV-M4"), {"status_code": 201}]
    assert runtime.feedback.apply_receipts(page, time.time(), "poll") == [
        "delivered", "duplicate", "pending", "undelivered", "unknown", "unknown", "delivered", "unknown"]
    states = [runtime.store.messages.message_state(mid) for mid in (delivered, pending, undelivered, forged, proved)]
    assert states == ["delivered", "sent", "undelivered", "sent", "delivered"]
    assert runtime.store.r.get("hl:stats:receipts_unknown") == "3"
    assert [e["result"] for e in runtime.store.messages.get_message(pending).timeline if e.get("kind") == "receipt"] \
        == ["pending"]
    assert runtime.store.messages.find_many([(None, "PROV-M4")])[0].id == proved
    unreported = runtime.store.messages.unreported(time.time() + 1)  # the set-up's own `sent`s were not told
    assert {state for _, state in unreported} == {"sent"} and proved not in {mid for mid, _ in unreported}
    assert runtime.feedback.apply_receipts(page[:1], time.time(), "push") == ["duplicate"]


def test_a_page_of_replies_applies_each_once_even_when_repeated_within_it(runtime: Runtime) -> None:
    mid = sent_message(runtime)
    stop = {"message_id": "IN-1", "from": "+61422222222", "body": "STOP", "timestamp": int(time.time())}
    answer = {"message_id": "IN-2", "from": "+61411111111", "body": "Thanks!", "original_message_id": "PROV-1",
              "custom_string": mid, "timestamp": int(time.time())}
    assert runtime.feedback.apply_inbounds([stop, stop, answer], time.time(), "poll") == \
        ["opted_out", "duplicate", "reply"]
    assert runtime.feedback.apply_inbounds([stop, answer], time.time(), "push") == ["duplicate", "duplicate"]
    assert list(runtime.store.optouts.optouts()) == ["+61422222222"]
    replies = [e for e in runtime.store.messages.get_message(mid).timeline if e.get("kind") == "reply"]
    assert [r["reason"] for r in replies] == ["reply: Thanks!"]


def test_a_receipt_or_reply_naming_ours_with_a_number_is_unknown_and_the_rest_of_its_page_applies(
        runtime: Runtime) -> None:
    mid = sent_message(runtime)
    page = [{"custom_string": 123, "message_id": {"x": 1}, "status_code": 201}, receipt(201)]
    assert runtime.feedback.apply_receipts(page, time.time(), "push") == ["unknown", "delivered"]
    assert runtime.store.messages.message_state(mid) == "delivered"
    reply = {"message_id": "IN-N", "from": "+61433333333", "body": "ok", "custom_string": 7}
    assert runtime.feedback.apply_inbounds([reply], time.time(), "push") == ["reply"]
