"""Message records: the sets that group messages (by event, by correlation key) live as long as their members."""

from __future__ import annotations

import json
import time
from decimal import Decimal

from tests.messages import message
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.entry.runtime import Runtime
from workers.store.keys import correlation_key, event_messages_key


def doc(mid: str, state: str, event_id: str = "evt_g", key: str | None = "booking-1") -> Message:
    return message(id=mid, event_id=event_id, source="calendar", state=state, to="+61411111111", body="hi", key=key,
                   send_at=time.time() + 86400 if state == "scheduled" else None)


def test_group_sets_expire_only_once_every_member_is_final(runtime: Runtime) -> None:
    r, now = runtime.store.r, time.time()
    runtime.store.messages.create_messages([doc("msg_g1", "scheduled"), doc("msg_g2", "scheduled")], now)
    sets = [event_messages_key("evt_g"), correlation_key("booking-1")]
    assert [r.pttl(s) for s in sets] == [-1, -1]
    # Redis key names stay inside the store
    assert "groups" not in runtime.store.messages.get_message("msg_g1").to_json()
    runtime.store.messages.transition("msg_g1", State.CANCELLED, now, "booking moved")
    assert [r.pttl(s) for s in sets] == [-1, -1]  # msg_g2 can still change: both sets kept
    runtime.store.messages.transition("msg_g2", State.CANCELLED, now, "booking cancelled")
    assert all(0 < r.pttl(s) <= runtime.settings.message_ttl * 1000 for s in sets)
    # A new message under the same key makes its set permanent again until that one is final too.
    runtime.store.messages.create_messages([doc("msg_g3", "scheduled", event_id="evt_g2")], now)
    assert r.pttl(correlation_key("booking-1")) == -1
    assert 0 < r.pttl(event_messages_key("evt_g")) <= runtime.settings.message_ttl * 1000


def test_members_whose_records_expired_leave_the_set(runtime: Runtime) -> None:
    r, now = runtime.store.r, time.time()
    runtime.store.messages.create_messages([doc("msg_g4", "scheduled", key="customer-9")], now)
    runtime.store.messages.transition("msg_g4", State.CANCELLED, now, "done")
    r.delete("hl:msg:msg_g4", "hl:msg:msg_g4:log")  # what its retention does
    runtime.store.messages.create_messages([doc("msg_g5", "suppressed", event_id="evt_g3", key="customer-9")], now)
    assert runtime.store.messages.key_message_ids("customer-9") == ["msg_g5"]


def test_a_message_created_final_gives_its_sets_a_retention(runtime: Runtime) -> None:
    runtime.store.messages.create_messages([doc("msg_g6", "suppressed", event_id="evt_g4", key=None)], time.time())
    assert 0 < runtime.store.r.pttl(event_messages_key("evt_g4")) <= runtime.settings.message_ttl * 1000


def test_a_hash_written_by_an_older_version_still_reads(runtime: Runtime) -> None:
    # Its document lacks fields added since and carries one since removed; the fields set beside it are JSON
    # (a transition's) or plain text (the scripts' state, event id and channel); the scripts' own are left out.
    r, messages = runtime.store.r, runtime.store.messages
    doc = {"id": "msg_old1", "event_id": "evt_old", "source": "shop", "rule": "r", "channel": "sms",
           "state": "planned", "to": "+61411111111", "from": "Shop", "estimate": "0.0792", "retired_field": [1]}
    r.hset("hl:msg:msg_old1", mapping={
        "doc": json.dumps(doc), "state": "sent", "event_id": "evt_old", "channel": "sms", "rule": "1",
        "groups": json.dumps(["hl:event:evt_old:msgs"]), "updated_at": "1790000000.5", "provider_id": '"P1"',
        "price": '"0.0800"', "parts": "1", "error": "not json {"})
    r.set("hl:provider:P1", "msg_old1")
    msg = messages.get_messages(["msg_old1", "msg_none"])
    assert msg[1] is None and msg[0] is not None
    got = msg[0]
    assert (got.state, got.rule, got.from_, got.estimate, got.price, got.parts, got.provider_id) == \
        (State.SENT, "r", "Shop", Decimal("0.0792"), Decimal("0.0800"), 1, "P1")
    assert (got.updated_at, got.error, got.retries, got.contact, got.reasons, got.timeline) == \
        (1790000000.5, "not json {", 0, {}, (), ())
    assert messages.find_many([("msg_old1", None), (None, "P1"), ("msg_old1", "P2")]) == [got, got, None]
    with_log = messages.get_message("msg_old1")
    assert with_log is not None and with_log.but(timeline=()) == got
