"""Policies on the live path, through Redis: quiet hours at the recipient when an event is processed, and a
scheduled message checked again when it falls due (quiet hours, a policy changed since, an opt-out since).

The neutral test policies have no quiet hours, so each test writes its own, built around the moment it uses.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rq.registry import ScheduledJobRegistry
from rq.utils import current_timestamp

from tests.conftest import API_TOKEN, Simulator, use_policies
from tests.flow.test_approvals import order_event
from tests.flow.test_processing import booking, ingest, iso_in, messages_of
from tests.flow.test_sender import drain
from tests.waiting import wait_for
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.entry.runtime import Runtime
from workers.store import keys
from workers.wiring import pipeline

CHICAGO = ZoneInfo("America/Chicago")
US_NUMBER = "+14055555555"  # a ClickSend test number in one zone: America/Chicago
KOLKATA = ZoneInfo("Asia/Kolkata")  # the example booking's attendee (reminders use the attendee's zone)
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def quiet_hours_around(moment: float, zone: ZoneInfo) -> tuple[str, str]:
    """Quiet hours (from, to) that began an hour before `moment` and end two hours after it, at `zone`'s wall
    clock."""
    local = datetime.fromtimestamp(moment, zone)
    return f"{local - timedelta(hours=1):%H:%M}", f"{local + timedelta(hours=2):%H:%M}"


def next_wall_time(moment: float, zone: ZoneInfo, hhmm: str) -> float:
    """The first time after `moment` when `zone`'s clocks show `hhmm`."""
    local = datetime.fromtimestamp(moment, zone)
    hour, minute = map(int, hhmm.split(":"))
    for days in range(3):
        candidate = datetime.combine(local.date() + timedelta(days=days), local.time(), zone).replace(
            hour=hour, minute=minute, second=0, microsecond=0)
        if candidate > local:
            return candidate.timestamp()
    raise AssertionError("unreachable")


def quiet_policy(start: str, end: str) -> str:
    return (f'policies:\n  default: {{quiet_hours: {{from: "{start}", to: "{end}", action: defer}}}}\n'
            "  paging: {}\n")


def fire_jobs_at(rt: Runtime) -> list[int]:
    """When RQ's scheduler will fire each pending message job (whole seconds, as RQ keeps them)."""
    registry = ScheduledJobRegistry(queue=pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE))
    return sorted(int(registry.get_scheduled_time(j).timestamp()) for j in registry.get_job_ids())


def test_quiet_hours_at_the_recipient_defer_a_message_on_the_live_path(runtime: Runtime) -> None:
    now = time.time()
    start, end = quiet_hours_around(now, CHICAGO)
    use_policies(runtime, quiet_policy(start, end))
    mid = order_event(runtime, 1, US_NUMBER)  # processed through Redis by Processing.process_events
    msg = runtime.store.messages.get_message(mid)
    until = next_wall_time(now, CHICAGO, end)
    assert (msg.state, msg.send_at) == ("scheduled", until)  # the end of the quiet window at the recipient
    entry = msg.timeline[-1]
    assert (entry["from"], entry["to"]) == ("planned", "scheduled")
    assert f"quiet hours {start}–{end} at the recipient (America/Chicago " in entry["reason"]
    assert entry["reason"].endswith(": deferred")
    assert runtime.store.r.llen(keys.outbox_key("sms")) == 0  # not queued for sending
    assert runtime.store.r.zscore(keys.DUE, mid) == until
    assert fire_jobs_at(runtime) == [int(until)]

    # The job runs late, when the next night's quiet hours have begun: deferred again, to that window's end.
    next_end = datetime.fromtimestamp(until, CHICAGO) + timedelta(days=1)
    late = (next_end - timedelta(minutes=90)).timestamp()
    assert runtime.processing.fire(mid, late) is False
    again = runtime.store.messages.get_message(mid)
    assert (again.state, again.send_at) == ("scheduled", next_end.timestamp())
    entry = again.timeline[-1]
    assert (entry["from"], entry["to"]) == ("scheduled", "scheduled")
    assert f"quiet hours {start}–{end} at the recipient" in entry["reason"] and entry["reason"].endswith("deferred")
    assert runtime.store.r.llen(keys.outbox_key("sms")) == 0
    assert fire_jobs_at(runtime) == [int(until), int(next_end.timestamp())]

    # At the end of the window it goes.
    assert runtime.processing.fire(mid, next_end.timestamp()) is True
    assert runtime.store.messages.message_state(mid) == "queued"
    assert runtime.store.r.lrange(keys.outbox_key("sms"), 0, -1) == [mid]


def reminder_2h(rt: Runtime, uid: str) -> Message:
    """Plan a Cal.com booking three days ahead; its 2 h reminder, scheduled (the attendee is in Asia/Kolkata)."""
    eid = ingest(rt, "bookings", booking(uid, iso_in(3 * 86400)), "BOOKING_CREATED", f"due-{uid}")
    rt.processing.process_events([eid], time.time())
    [reminder] = [m for m in messages_of(rt, eid) if m.rule == "reminder-2h"]
    assert reminder.state == "scheduled" and reminder.timezone == "Asia/Kolkata"
    return reminder


def test_a_scheduled_message_that_falls_due_in_quiet_hours_is_deferred(e2e: Runtime, work,  # noqa: ANN001
                                                                       simulator: Simulator) -> None:
    reminder = reminder_2h(e2e, "due-quiet")
    due = reminder.send_at
    start, end = quiet_hours_around(due, KOLKATA)
    use_policies(e2e, quiet_policy(start, end))  # quiet hours are only checked when it falls due
    assert e2e.processing.fire(reminder.id, due) is False
    msg = e2e.store.messages.get_message(reminder.id)
    until = next_wall_time(due, KOLKATA, end)
    assert (msg.state, msg.send_at) == ("scheduled", until)
    assert f"quiet hours {start}–{end} at the recipient (Asia/Kolkata " in msg.timeline[-1]["reason"]
    assert e2e.store.r.zscore(keys.DUE, reminder.id) == until
    assert int(until) in fire_jobs_at(e2e)
    work()
    drain(e2e)
    assert e2e.store.messages.message_state(reminder.id) == "scheduled"
    assert simulator.state.ledger == {}


def reminder_due_soon(rt: Runtime, uid: str) -> Message:
    """Plan a Cal.com booking two hours and two seconds ahead; its 2 h reminder, scheduled to go within seconds."""
    eid = ingest(rt, "bookings", booking(uid, iso_in(2 * 3600 + 2)), "BOOKING_CREATED", f"soon-{uid}")
    rt.processing.process_events([eid], time.time())
    [reminder] = [m for m in messages_of(rt, eid) if m.rule == "reminder-2h"]
    assert reminder.state == "scheduled"
    return reminder


def fire_when_due(rt: Runtime, work) -> None:  # noqa: ANN001
    """Wait until RQ's scheduler may fire the reminder, then run the workers with the scheduler."""
    registry = ScheduledJobRegistry(queue=pipeline.queue(rt.rq_connection, pipeline.EVENTS_QUEUE))
    wait_for(lambda: registry.get_jobs_to_schedule(current_timestamp()), "the reminder's job to fall due")
    work(with_scheduler=True)
    drain(rt)


def test_a_scheduled_message_whose_policy_became_manual_is_held_when_due(e2e: Runtime, client, work,  # noqa: ANN001
                                                                        simulator: Simulator) -> None:
    reminder = reminder_due_soon(e2e, "due-manual")
    use_policies(e2e, "policies:\n  default: {approval: manual}\n  paging: {}\n")
    fire_when_due(e2e, work)
    msg = e2e.store.messages.get_message(reminder.id)
    assert msg.state == "held"
    assert (msg.timeline[-1]["from"], msg.timeline[-1]["reason"]) == ("scheduled", "policy default: approval is manual")
    assert e2e.store.r.zscore(keys.DUE, reminder.id) is None
    assert [a["id"] for a in client.get("/api/approvals", headers=AUTH).json["approvals"]] == [reminder.id]
    assert simulator.state.ledger == {}  # held: nothing went out
    approved = client.post(f"/api/approvals/{reminder.id}/approve", json={"by": "ann"}, headers=AUTH)
    assert approved.json == {"results": {reminder.id: "approved"}}
    work()
    drain(e2e)
    assert e2e.store.messages.message_state(reminder.id) == "sent"
    assert simulator.state.ledger == {reminder.id: 1}


def test_a_scheduled_message_to_a_number_that_opted_out_since_is_suppressed_when_due(
        e2e: Runtime, work, simulator: Simulator) -> None:  # noqa: ANN001
    reminder = reminder_due_soon(e2e, "due-optout")
    e2e.store.optouts.opt_out(reminder.to, time.time(), via="reply", detail="STOP")
    fire_when_due(e2e, work)  # RQ's scheduler fires it: admission finds the opt-out
    msg = e2e.store.messages.get_message(reminder.id)
    assert msg.state == State.SUPPRESSED
    assert msg.timeline[-1]["from"] == "scheduled"
    assert msg.timeline[-1]["reason"] == "recipient opted out (replied STOP or added by an operator)"
    assert e2e.store.r.zscore(keys.DUE, reminder.id) is None
    assert e2e.store.r.llen(keys.outbox_key("sms")) == 0
    assert simulator.state.ledger == {}
