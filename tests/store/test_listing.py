"""Listing events and messages: newest first, filtered, paged by cursor without losing or repeating anything,
indexes written with the ingest and trimmed to the event TTL, scans bounded per page."""

from __future__ import annotations

import time

import pytest

from tests.messages import message
from workers.core.events import Event
from workers.core.lifecycle import State
from workers.entry.runtime import Runtime
from workers.store import pages
from workers.store.events import EventQuery
from workers.store.keys import EVENTS_BY_TIME, events_source_index, events_type_index
from workers.store.messages import MessageQuery
from workers.store.pages import Page, Position

DAY = 86400.0


def ingest(rt: Runtime, eid: str, at: float, source: str = "shop", type_: str = "orders/create",
           external: str | None = None, ttl: float = 7 * DAY) -> None:
    event = Event(eid, source, type_, external or f"ext-{eid}", at, {}, {"n": eid})
    assert rt.store.events.ingest(event, 60, ttl, rt.settings.partitions).created


def every_page(fetch, limit: int) -> list[list[str]]:  # noqa: ANN001
    """The ids of each page, following `next` to the end."""
    out, after = [], None
    while True:
        page: Page = fetch(limit, after)
        out.append([item.id for item in page.items])
        if page.next is None:
            return out
        after = page.next


def test_events_come_newest_first_in_pages_that_together_hold_each_once(runtime: Runtime) -> None:
    now = time.time()
    for i in range(7):
        ingest(runtime, f"evt_{i}", now - 100 + i)
    fetch = lambda limit, after: runtime.store.events.list_events(EventQuery(limit=limit, after=after))  # noqa: E731
    assert every_page(fetch, 3) == [["evt_6", "evt_5", "evt_4"], ["evt_3", "evt_2", "evt_1"], ["evt_0"]]
    assert every_page(fetch, 7) == [["evt_6", "evt_5", "evt_4", "evt_3", "evt_2", "evt_1", "evt_0"]]


def test_event_filters_by_source_type_status_rule_time_and_search(runtime: Runtime) -> None:
    now, events = time.time(), runtime.store.events
    ingest(runtime, "evt_a", now - 50, source="shop", type_="orders/create", external="order-1")
    ingest(runtime, "evt_b", now - 40, source="alerts", type_="firing", external="order-1")
    ingest(runtime, "evt_c", now - 30, source="shop", type_="orders/paid")
    ingest(runtime, "evt_d", now - 20, source="shop", type_="orders/create")
    events.mark_processed([("evt_a", {"rules": ["order-confirmation"], "messages": 1})], now)
    events.mark_processed([("evt_d", {"rules": ["other"], "messages": 1})], now)
    events.mark_processed([("evt_c", {"error": "boom"})], now, status="failed")

    def ids(**filters: object) -> list[str]:
        return [r.id for r in events.list_events(EventQuery(**filters)).items]  # type: ignore[arg-type]

    assert ids(source="shop") == ["evt_d", "evt_c", "evt_a"]
    assert ids(type="orders/create") == ["evt_d", "evt_a"]
    assert ids(source="alerts", type="orders/create") == []
    assert ids(source="shop", type="orders/create", status="processed") == ["evt_d", "evt_a"]
    assert ids(status="failed") == ["evt_c"]
    assert ids(status="received") == ["evt_b"]
    assert ids(rule="order-confirmation") == ["evt_a"]
    assert ids(since=now - 45, until=now - 30) == ["evt_c", "evt_b"]
    assert ids(search="order-1") == ["evt_b", "evt_a"]
    assert ids(search="evt_c") == ["evt_c"]
    assert ids(search="order-1", source="shop") == ["evt_a"]
    assert ids(search="nothing") == []
    page = events.list_events(EventQuery(source="shop"))
    assert page.items[0].event.payload == {"n": "evt_d"} and page.items[1].status == "failed"


def test_ingest_indexes_expire_with_the_event_ttl(runtime: Runtime) -> None:
    r, now = runtime.store.r, time.time()
    ingest(runtime, "evt_old", now - 2 * DAY, ttl=DAY)
    ingest(runtime, "evt_new", now, ttl=DAY)
    # The new ingest dropped the entry older than the TTL from every index it touched.
    for key in (EVENTS_BY_TIME, events_source_index("shop"), events_type_index("orders/create")):
        assert r.zrange(key, 0, -1) == ["evt_new"]
        assert 0 < r.pttl(key) <= DAY * 1000
    # A duplicate is not indexed twice, and a repeat enters no index.
    assert not runtime.store.events.ingest(Event("evt_new2", "shop", "orders/create", "ext-evt_new", now, {}, {}),
                                           60, DAY, runtime.settings.partitions).created
    assert r.zcard(EVENTS_BY_TIME) == 1


def test_an_expired_record_is_skipped_not_listed(runtime: Runtime) -> None:
    now = time.time()
    ingest(runtime, "evt_x", now - 2)
    ingest(runtime, "evt_y", now - 1)
    runtime.store.r.delete("hl:event:evt_y")  # what its TTL does
    assert [e.id for e in runtime.store.events.list_events(EventQuery()).items] == ["evt_x"]


def test_a_sparse_filter_examines_at_most_the_budget_per_page(runtime: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    for i in range(9):
        ingest(runtime, f"evt_{i}", now - 100 + i)
    runtime.store.events.mark_processed([("evt_1", {"error": "x"})], now, status="failed")
    monkeypatch.setattr(pages, "SCAN_BUDGET", 4)
    first = runtime.store.events.list_events(EventQuery(status="failed", limit=10))
    assert first.items == () and first.next == Position(now - 100 + 5, "evt_5")
    second = runtime.store.events.list_events(EventQuery(status="failed", limit=10, after=first.next))
    assert [e.id for e in second.items] == ["evt_1"] and second.next is not None
    third = runtime.store.events.list_events(EventQuery(status="failed", limit=10, after=second.next))
    assert third.items == () and third.next is None


def test_messages_sharing_one_time_page_through_ties_even_as_they_change_state(runtime: Runtime) -> None:
    now, msgs = time.time(), runtime.store.messages
    batch = [message(id=f"msg_{i:02}", event_id="evt_t", state="queued", to="+61411111111") for i in range(12)]
    msgs.create_messages(batch, now)  # one `now`: twelve entries at the same score
    first = msgs.list_messages(MessageQuery(state=State.QUEUED, limit=5))
    assert [m.id for m in first.items] == [f"msg_{i:02}" for i in range(11, 6, -1)]
    # The page's last message leaves the index before the next page is asked for; the rest still come once.
    msgs.transition("msg_07", State.CANCELLED, now + 1, "changed")
    rest = every_page(lambda limit, after: msgs.list_messages(MessageQuery(state=State.QUEUED, limit=limit,
                                                                           after=after or first.next)), 5)
    assert rest == [[f"msg_{i:02}" for i in range(6, 1, -1)], ["msg_01", "msg_00"]]


def test_message_filters_and_every_state_merged(runtime: Runtime) -> None:
    now, msgs = time.time(), runtime.store.messages
    msgs.create_messages([message(id="msg_a", state="queued", rule="r1", event_id="evt_1")], now - 30)
    msgs.create_messages([message(id="msg_b", state="held", rule="r2", event_id="evt_1", channel="voice")], now - 20)
    msgs.create_messages([message(id="msg_c", state="queued", rule="r1", event_id="evt_2")], now - 10)
    msgs.transition("msg_a", State.CANCELLED, now, "by key")

    def ids(**filters: object) -> list[str]:
        return [m.id for m in msgs.list_messages(MessageQuery(**filters)).items]  # type: ignore[arg-type]

    assert ids() == ["msg_a", "msg_c", "msg_b"]  # by when each entered its current state
    assert ids(state=State.QUEUED) == ["msg_c"]
    assert ids(rule="r1") == ["msg_a", "msg_c"]
    assert ids(channel="voice") == ["msg_b"]
    assert ids(event_id="evt_1") == ["msg_a", "msg_b"]
    assert ids(event_id="evt_1", state=State.HELD) == ["msg_b"]
    assert ids(since=now - 25, until=now - 5) == ["msg_c", "msg_b"]
    assert ids(event_id="evt_1", until=now - 5) == ["msg_b"]
    assert every_page(lambda limit, after: msgs.list_messages(MessageQuery(limit=limit, after=after)), 1) == \
        [["msg_a"], ["msg_c"], ["msg_b"]]
    assert every_page(lambda limit, after: msgs.list_messages(MessageQuery(event_id="evt_1", limit=limit,
                                                                           after=after)), 1) == [["msg_a"], ["msg_b"]]


def test_messages_by_source_and_found_by_their_id_clicksends_or_their_events(runtime: Runtime) -> None:
    now, store = time.time(), runtime.store
    ingest(runtime, "evt_s1", now - 60, external="order-1001")
    ingest(runtime, "evt_s2", now - 50, source="alerts", external="order-1001")  # two senders, one id
    store.messages.create_messages([message(id="msg_s1", event_id="evt_s1", state="sent", source="shop"),
                                    message(id="msg_s2", event_id="evt_s1", state="queued", source="shop"),
                                    message(id="msg_s3", event_id="evt_s2", state="sent", source="alerts")], now)
    store.feedback.index_provider_ids({"CS-77": "msg_s1"})

    def ids(**filters: object) -> list[str]:
        return sorted(m.id for m in store.messages.list_messages(MessageQuery(**filters)).items)  # type: ignore[arg-type]

    assert ids(source="alerts") == ["msg_s3"] and ids(source="shop") == ["msg_s1", "msg_s2"]
    assert ids(ids=store.search_messages("msg_s2")) == ["msg_s2"]
    assert ids(ids=store.search_messages("CS-77")) == ["msg_s1"]
    assert ids(ids=store.search_messages("evt_s2")) == ["msg_s3"]
    assert ids(ids=store.search_messages("order-1001")) == ["msg_s1", "msg_s2", "msg_s3"]
    assert ids(ids=store.search_messages("order-1001"), source="shop", state=State.SENT) == ["msg_s1"]
    assert ids(ids=store.search_messages("order-1001"), event_id="evt_s2") == ["msg_s3"]
    assert ids(ids=store.search_messages("nothing-like-it")) == []


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    position = Position(1700000000.123456, "evt_abc")
    assert Position.from_cursor(position.cursor()) == position
    for bad in ("", "not-base64!", "bnVsbA", Position(float("nan"), "x").cursor()):
        with pytest.raises(ValueError):
            Position.from_cursor(bad)
