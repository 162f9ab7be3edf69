"""Message records: the sets that group messages (by event, by correlation key) live as long as their members."""

from __future__ import annotations

import time

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
