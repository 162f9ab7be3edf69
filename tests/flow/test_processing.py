"""Events become messages in Redis: the shipped examples, idempotency, cancel and replace by key, firing."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from rq.registry import ScheduledJobRegistry
from rq.utils import current_timestamp

from tests import signing
from tests.conftest import ROOT, use_policies
from tests.waiting import wait_for
from workers.core.events import Event
from workers.entry import jobs
from workers.entry.runtime import Runtime
from workers.flow import admission
from workers.store import keys
from workers.wiring import pipeline

EXAMPLES = ROOT / "examples"


def ingest(rt: Runtime, source: str, payload: dict, type_: str, external_id: str, received_at: float | None = None
           ) -> str:
    """Store an event the way the web edge would, and return its id."""
    event = Event(id=f"evt_{source}_{external_id}", source=source, type=type_, external_id=external_id,
                  received_at=received_at or time.time(), payload=payload)
    assert rt.store.events.ingest(event, 3600, 3600, rt.settings.partitions).created
    return event.id


def messages_of(rt: Runtime, event_id: str) -> list[dict]:
    return [rt.store.messages.get_message(m) for m in rt.store.messages.event_message_ids(event_id)]


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def booking(uid: str, start: str, type_: str = "BOOKING_CREATED", created_at: str | None = None,
            moved_from: str | None = None) -> dict:
    """A Cal.com booking event (from the shipped example) for booking `uid` starting at `start`."""
    payload = example("booking-created.json")
    payload["triggerEvent"] = type_
    payload["payload"] |= {"uid": uid, "startTime": start, "smsReminderNumber": "+61411111111"}
    if created_at:
        payload["createdAt"] = created_at
    if moved_from:  # Cal.com: a rescheduled booking is a new booking that names the one it replaces
        payload["payload"]["rescheduleUid"] = moved_from
    return payload


def iso_in(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


def test_shop_order_becomes_one_queued_sms(runtime: Runtime) -> None:
    eid = ingest(runtime, "shop", example("shop-order.json"), "orders/create", "o1")
    counts = runtime.processing.process_events([eid], time.time())
    assert counts == {"queued": 1}
    [msg] = messages_of(runtime, eid)
    assert msg.to == "+61411111111"
    assert msg.body == "Hi Bob, thanks for your order #1001 (US$409.94). We'll text you when it ships."  # US$: AU
    assert (msg.state, msg.encoding, msg.segments, msg.key) == ("queued", "GSM-7", 1, "order-450789469")
    assert [t["to"] for t in msg.timeline] == ["planned", "queued"]
    assert "approved automatically" in msg.timeline[1]["reason"]
    assert runtime.store.events.get_event(eid).rules == ("order-confirmation",)
    assert runtime.store.r.lrange(keys.outbox_key("sms"), 0, -1) == [msg.id]


def test_unpaid_order_matches_nothing(runtime: Runtime) -> None:
    payload = example("shop-order.json") | {"financial_status": "voided"}
    eid = ingest(runtime, "shop", payload, "orders/create", "o2")
    runtime.processing.process_events([eid], time.time())
    assert messages_of(runtime, eid) == []
    assert runtime.store.events.get_event(eid).status == "processed"


def test_alertmanager_critical_pages_by_sms_and_voice(runtime: Runtime) -> None:
    eid = ingest(runtime, "alerts", example("alertmanager-firing.json"), "firing", "a1")
    runtime.processing.process_events([eid], time.time())
    msgs = messages_of(runtime, eid)
    assert sorted((m.channel, m.to) for m in msgs) == [
        ("sms", "+61411111111"), ("sms", "+61422222222"), ("voice", "+61411111111"), ("voice", "+61422222222")]
    assert all(m.critical for m in msgs)
    sms = next(m for m in msgs if m.channel == "sms")
    assert sms.body == ("[FIRING:2] InstanceDown (critical): db-1:9100 has been down for more than 5 minutes; "
                        "db-2:9100 has been down for more than 5 minutes")


def test_alertmanager_resolved_sends_a_short_sms(runtime: Runtime) -> None:
    payload = json.loads((ROOT / "tests/fixtures/providers/alertmanager/resolved.json").read_text())
    eid = ingest(runtime, "alerts", payload, "resolved", "a2")
    runtime.processing.process_events([eid], time.time())
    assert {m.body for m in messages_of(runtime, eid)} == {"[RESOLVED] InstanceDown (critical): db-1:9100"}


def test_processing_the_same_event_twice_creates_nothing_new(runtime: Runtime) -> None:
    eid = ingest(runtime, "alerts", example("alertmanager-firing.json"), "firing", "a3")
    first = runtime.processing.process_events([eid], time.time())
    second = runtime.processing.process_events([eid], time.time())
    assert sum(first.values()) == 4
    assert second == {}
    assert runtime.store.r.llen(keys.outbox_key("sms")) == 2
    assert runtime.store.r.llen(keys.outbox_key("voice")) == 2


def test_processing_the_same_event_again_reserves_no_more_budget(runtime: Runtime) -> None:
    # A drain killed after it created the messages but before it marked the events processed runs them again:
    # the messages exist, so nothing may be admitted (and charged to the day's budget) a second time.
    use_policies(runtime, "policies:\n  default: {daily_budget: 100}\n  paging: {daily_budget: 100}\n")
    eid = ingest(runtime, "alerts", example("alertmanager-firing.json"), "firing", "a-budget")
    runtime.processing.process_events([eid], time.time())
    day = admission.day_of(runtime.settings.timezone, time.time())
    spent = runtime.store.reservations.spent(day)
    assert spent > 0
    runtime.processing.process_events([eid], time.time())
    assert runtime.store.reservations.spent(day) == spent


def test_booking_reminders_are_scheduled_24h_and_2h_before(runtime: Runtime) -> None:
    start = int(time.time()) + 3 * 86400
    eid = ingest(runtime, "bookings", booking("b1", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))),
                 "BOOKING_CREATED", "c1")
    runtime.processing.process_events([eid], time.time())
    msgs = messages_of(runtime, eid)
    assert sorted(m.send_at - start for m in msgs) == [-86400, -7200]
    assert {m.state for m in msgs} == {"scheduled"}
    assert runtime.store.messages.due_messages(start) and len(runtime.store.messages.due_messages(start)) == 2


def test_rescheduled_booking_replaces_the_pending_reminders(runtime: Runtime) -> None:
    first = ingest(runtime, "bookings", booking("b2", iso_in(3 * 86400)), "BOOKING_CREATED", "c2")
    runtime.processing.process_events([first], time.time())
    # Cal.com: the moved booking has a new uid and names the old one in rescheduleUid.
    moved = ingest(runtime, "bookings", booking("b2-moved", iso_in(5 * 86400), "BOOKING_RESCHEDULED",
                                                moved_from="b2"), "BOOKING_RESCHEDULED", "c3")
    counts = runtime.processing.process_events([moved], time.time())
    assert counts["cancelled"] == 2
    assert {m.state for m in messages_of(runtime, first)} == {"cancelled"}
    assert {m.state for m in messages_of(runtime, moved)} == {"scheduled"}
    old = messages_of(runtime, first)[0]
    assert old.timeline[-1]["reason"] == "cancelled by rule booking-moved"
    assert sorted(runtime.store.messages.due_messages(time.time() + 10 * 86400)) == sorted(
        m.id for m in messages_of(runtime, moved))


def test_cancelled_booking_cancels_its_reminders(runtime: Runtime) -> None:
    created = ingest(runtime, "bookings", booking("b3", iso_in(3 * 86400)), "BOOKING_CREATED", "c4")
    runtime.processing.process_events([created], time.time())
    cancelled = ingest(runtime, "bookings", booking("b3", iso_in(3 * 86400), "BOOKING_CANCELLED"),
                       "BOOKING_CANCELLED", "c5")
    counts = runtime.processing.process_events([cancelled], time.time())
    assert counts["cancelled"] == 2
    assert {m.state for m in messages_of(runtime, created)} == {"cancelled"}
    assert runtime.store.messages.due_messages(time.time() + 10 * 86400) == []
    # A cancelled message can no longer fire.
    assert not any(runtime.processing.fire(m.id, time.time() + 10 * 86400) for m in messages_of(runtime, created))


def test_a_created_event_that_arrives_after_its_reschedule_plans_nothing(runtime: Runtime) -> None:
    moved = booking("b10-moved", iso_in(5 * 86400), "BOOKING_RESCHEDULED", "2026-11-26T10:00:00Z", moved_from="b10")
    late = booking("b10", iso_in(3 * 86400), created_at="2026-11-26T09:00:00Z")  # happened first
    newer = ingest(runtime, "bookings", moved, "BOOKING_RESCHEDULED", "c11")
    runtime.processing.process_events([newer], time.time())
    older = ingest(runtime, "bookings", late, "BOOKING_CREATED", "c12")
    counts = runtime.processing.process_events([older], time.time())
    assert counts["stale"] == 2 and counts["replaced"] == 0
    assert {m.state for m in messages_of(runtime, newer)} == {"scheduled"}  # the reschedule stands
    stale = messages_of(runtime, older)
    assert {m.state for m in stale} == {"cancelled"}
    assert all("superseded: a newer event for key booking-b10" in m.timeline[-1]["reason"] for m in stale)


def test_a_reschedule_retried_after_the_cancellation_sends_no_reminders(runtime: Runtime) -> None:
    created = ingest(runtime, "bookings", booking("b11", iso_in(3 * 86400), created_at="2026-11-26T09:00:00Z"),
                     "BOOKING_CREATED", "c13")
    cancel = booking("b11", iso_in(3 * 86400), "BOOKING_CANCELLED", "2026-11-26T11:00:00Z")
    # The same booking key moved (as a rescheduled event for b11 itself would be), retried after the cancel.
    moved = booking("b11", iso_in(4 * 86400), "BOOKING_RESCHEDULED", "2026-11-26T10:00:00Z")
    runtime.processing.process_events([created], time.time())
    runtime.processing.process_events([ingest(runtime, "bookings", cancel, "BOOKING_CANCELLED", "c14")], time.time())
    late = ingest(runtime, "bookings", moved, "BOOKING_RESCHEDULED", "c15")  # a retry, delivered last
    runtime.processing.process_events([late], time.time())
    assert {m.state for m in messages_of(runtime, created)} == {"cancelled"}
    assert {m.state for m in messages_of(runtime, late)} == {"cancelled"}
    assert runtime.store.messages.due_messages(time.time() + 10 * 86400) == []  # nothing will fire


def test_cancelling_a_queued_reminder_gives_back_what_admission_took(runtime: Runtime) -> None:
    use_policies(runtime, "policies:\n  default: {daily_budget: 10, duplicate_window: 1h,"
                          " max_per_recipient: {count: 3, per: 1h}}\n  paging: {}\n")
    created = ingest(runtime, "bookings", booking("b9", iso_in(2 * 3600 + 1)), "BOOKING_CREATED", "c9")
    runtime.processing.process_events([created], time.time())
    reminder = next(m for m in messages_of(runtime, created) if m.rule == "reminder-2h")
    now = time.time() + 2
    assert runtime.processing.fire(reminder.id, now)  # due: admitted and queued, budget reserved
    queued = runtime.store.messages.get_message(reminder.id)
    day = queued.reserved_day
    r = runtime.store.r
    assert Decimal(r.get(keys.spend_key(day))) == queued.reserved > 0
    assert r.get(keys.duplicate_key(admission.duplicate_digest(queued))) == reminder.id
    assert r.zscore(keys.recipient_rate_key(queued.to), reminder.id) is not None

    cancelled = ingest(runtime, "bookings", booking("b9", iso_in(2 * 3600), "BOOKING_CANCELLED"),
                       "BOOKING_CANCELLED", "c10")
    assert runtime.processing.process_events([cancelled], now)["cancelled"] == 1  # the 24 h one was past
    assert runtime.store.messages.message_state(reminder.id) == "cancelled"
    assert Decimal(r.get(keys.spend_key(day))) == 0  # never sent: nothing spent
    assert not r.exists(keys.duplicate_key(admission.duplicate_digest(queued)))  # a new booking may say it again
    assert r.zscore(keys.recipient_rate_key(queued.to), reminder.id) is None


def test_a_message_already_sending_is_not_cancelled(runtime: Runtime) -> None:
    eid = ingest(runtime, "shop", example("shop-order.json"), "orders/create", "o9")
    runtime.processing.process_events([eid], time.time())
    [msg] = messages_of(runtime, eid)
    assert runtime.store.messages.transition(msg.id, "sending", time.time(), "flush")[0]
    assert runtime.store.messages.cancel_by_key("order-450789469", time.time(), "too late") == []
    assert runtime.store.messages.message_state(msg.id) == "sending"


def test_scheduled_message_fires_via_rq_scheduler_and_lands_in_the_outbox(runtime: Runtime, work) -> None:  # noqa: ANN001
    payload = booking("b4", iso_in(2 * 3600 + 2))  # the 2 h reminder is due in 2 s; the 24 h one is past
    eid = ingest(runtime, "bookings", payload, "BOOKING_CREATED", "c6")
    runtime.processing.process_events([eid], time.time())
    states = {m.rule: m.state for m in messages_of(runtime, eid)}
    assert states == {"reminder-24h": "suppressed", "reminder-2h": "scheduled"}
    registry = scheduled_registry(runtime)
    assert registry.count == 1
    wait_for(lambda: registry.get_jobs_to_schedule(current_timestamp()), "the reminder's job to fall due")
    work(with_scheduler=True)  # the worker's scheduler moves due jobs to the queue, then runs them
    reminder = next(m for m in messages_of(runtime, eid) if m.rule == "reminder-2h")
    assert reminder.state == "queued"
    assert reminder.timeline[-1]["reason"].startswith("scheduled time reached; policy default: approved")
    assert runtime.store.messages.due_messages(time.time() + 86400) == []


def test_due_sweep_fires_messages_whose_job_was_lost(runtime: Runtime) -> None:
    payload = booking("b5", iso_in(2 * 3600 + 1))
    eid = ingest(runtime, "bookings", payload, "BOOKING_CREATED", "c7")
    runtime.processing.process_events([eid], time.time())
    registry = scheduled_registry(runtime)
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
    assert jobs.fire_due_messages() == 0  # not due yet
    fired, deadline = 0, time.monotonic() + 15
    while not fired and time.monotonic() < deadline:  # due within seconds; the sweep looks 2 s back
        time.sleep(0.2)
        fired = jobs.fire_due_messages()
    assert fired == 1
    assert jobs.fire_due_messages() == 0


def scheduled_registry(rt: Runtime) -> ScheduledJobRegistry:
    return ScheduledJobRegistry(queue=pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE))


def test_webhook_to_queued_message_through_the_worker(client, work, runtime: Runtime,  # noqa: ANN001
                                                      secrets_env: dict) -> None:
    body = (EXAMPLES / "shop-order.json").read_bytes()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "w1",
               **signing.shopify(secrets_env["SHOP_WEBHOOK_SECRET"], body)}
    eid = client.post("/hooks/shop", data=body, headers=headers).json["event_id"]
    work()
    [msg] = messages_of(runtime, eid)
    assert msg.state == "queued"


@pytest.fixture
def broken_rules(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    return tmp_path / "rules"


def test_hot_reload_survives_a_broken_edit(runtime: Runtime, broken_rules: Path, redis_client: redis.Redis) -> None:
    from workers.wiring.rulesdir import RulesDir

    rd = RulesDir(broken_rules, runtime.settings)
    assert rd.reload()
    runtime.rules = rd
    shop = broken_rules / "shop.yaml"
    shop.write_text(shop.read_text().replace("channel: sms", "channel: fax", 1))
    eid = ingest(runtime, "shop", example("shop-order.json"), "orders/create", "o3")
    runtime.processing.process_events([eid], time.time() + 5)
    rd.current(now=time.monotonic() + 5)
    assert any("shop.yaml" in e and "send.channel" in e for e in rd.errors)
    assert len(messages_of(runtime, eid)) == 1  # the last good rules kept working


def test_a_lone_surrogate_in_a_rendered_body_fails_its_message_not_the_event(runtime: Runtime) -> None:
    # Stored before the edge refused such bodies (or rendered by a template literal): the event still finishes.
    order = example("shop-order.json")
    order["customer"]["first_name"] = "Ann\ud800"
    eid = ingest(runtime, "shop", order, "orders/create", "o-surrogate")
    assert runtime.processing.process_events([eid], time.time()) == {"failed": 1}
    [msg] = messages_of(runtime, eid)
    assert msg.state == "failed"
    assert "lone surrogate \\ud800 at character 7" in msg.reasons[0]
    assert runtime.store.events.get_event(eid).status == "processed"
