"""Planning: recipients, rendering failures, scheduling and `if_past`, deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from workers.core.events import Event
from workers.core.planning import plan_event
from workers.core.rules import parse_rule_file
from workers.core.templates import environment

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC).timestamp()


def rules(text: str):  # noqa: ANN201
    return parse_rule_file(yaml.safe_load(text), "r.yaml", environment("UTC", "AU"), lambda n: "")


def event(payload: dict, type_: str = "e", received_at: float = NOW) -> Event:
    return Event(id="evt_1", source="s", type=type_, external_id="x", received_at=received_at, payload=payload)


def plan(rule_text: str, payload: dict, **kw):  # noqa: ANN201
    return plan_event(event(payload, **kw), rules(rule_text), NOW, "UTC", "AU")


SMS = """
rules:
  - name: r
    source: s
    event: e
    send: {{channel: sms, to: "{to}", body: "{body}"}}
    {extra}
"""


def sms(to: str = "{{ payload.to }}", body: str = "Hi {{ payload.name }}", extra: str = "") -> str:
    return SMS.format(to=to, body=body, extra=extra)


def test_several_recipients_normalised_to_e164_and_deduplicated() -> None:
    [outcome] = plan(sms(), {"to": "0411 111 111, +61422222222; 0411111111", "name": "Ann"})
    assert [m.to for m in outcome.messages] == ["+61411111111", "+61422222222"]
    assert all(m.state == "planned" and m.body == "Hi Ann" for m in outcome.messages)
    assert outcome.messages[0].country == "AU"


def test_invalid_number_fails_that_message_only() -> None:
    [outcome] = plan(sms(), {"to": "+61411111111, 12345", "name": "Ann"})
    good, bad = outcome.messages
    assert good.state == "planned"
    assert bad.state == "failed"
    assert "invalid recipient" in bad.reasons[0]
    assert "12345" not in bad.reasons[0]  # full numbers stay out of reasons


def test_missing_field_fails_the_message_with_the_field() -> None:
    [outcome] = plan(sms(), {"to": "+61411111111"})
    [msg] = outcome.messages
    assert msg.state == "failed"
    assert msg.reasons == ("send.body: missing field (name is missing)",)


def test_message_ids_are_deterministic_per_event_rule_and_recipient() -> None:
    first = plan(sms(), {"to": "+61411111111", "name": "A"})[0].messages[0].id
    again = plan(sms(), {"to": "+61411111111", "name": "A"})[0].messages[0].id
    other = plan(sms(), {"to": "+61422222222", "name": "A"})[0].messages[0].id
    assert first == again != other


def test_ucs2_is_visible_in_the_reasons() -> None:
    [outcome] = plan(sms(body="It’s ready"), {"to": "+61411111111"})
    [msg] = outcome.messages
    assert (msg.encoding, msg.segments, msg.non_gsm) == ("UCS-2", 1, ("’",))
    assert "UCS-2 because of '’'" in msg.reasons[0]


def test_delay_counts_from_the_event_arrival() -> None:
    [outcome] = plan(sms(extra="schedule: {delay: 10m}"), {"to": "+61411111111", "name": "A"})
    assert outcome.messages[0].send_at == NOW + 600


def test_delay_already_elapsed_sends_now() -> None:
    [outcome] = plan(sms(extra="schedule: {delay: 10m}"), {"to": "+61411111111", "name": "A"},
                     received_at=NOW - 3600)
    assert outcome.messages[0].send_at is None


def test_at_with_offset_and_naive_time_in_the_configured_zone() -> None:
    extra = 'schedule: {at: "{{ payload.start }}", offset: -24h}'
    [outcome] = plan(sms(extra=extra), {"to": "+61411111111", "name": "A", "start": "2026-11-30T10:30:00"})
    assert outcome.messages[0].send_at == datetime(2026, 11, 29, 10, 30, tzinfo=UTC).timestamp()


def test_time_already_past_is_skipped_by_default() -> None:
    extra = 'schedule: {at: "{{ payload.start }}", offset: -24h}'
    [outcome] = plan(sms(extra=extra), {"to": "+61411111111", "name": "A", "start": "2026-11-26T12:00:00Z"})
    [msg] = outcome.messages
    assert msg.state == "suppressed"
    assert "if_past: skip" in msg.reasons[0]


def test_time_already_past_sends_now_with_if_past_send() -> None:
    extra = 'schedule: {at: "{{ payload.start }}", offset: -24h, if_past: send}'
    [outcome] = plan(sms(extra=extra), {"to": "+61411111111", "name": "A", "start": "2026-11-26T12:00:00Z"})
    [msg] = outcome.messages
    assert (msg.state, msg.send_at) == ("planned", None)


def test_unparseable_schedule_time_fails_the_message() -> None:
    extra = 'schedule: {at: "{{ payload.start }}"}'
    [outcome] = plan(sms(extra=extra), {"to": "+61411111111", "name": "A", "start": "next tuesday"})
    assert outcome.messages[0].state == "failed"
    assert "schedule.at" in outcome.messages[0].reasons[0]


def test_non_matching_rules_say_why() -> None:
    text = sms(extra="when: {payload.total: {gte: 20}}")
    [outcome] = plan(text, {"to": "+61411111111", "total": "5"})
    assert not outcome.matched
    assert outcome.reasons == ["payload.total gte 20: got '5'"]
    [outcome] = plan_event(event({}, type_="other"), rules(text), NOW, "UTC", "AU")
    assert outcome.reasons == ["event type 'other' does not match ['e']"]


def test_cancel_rule_renders_its_key() -> None:
    text = "rules:\n  - {name: c, source: s, event: e, cancel: {key: 'booking-{{ payload.uid }}'}}\n"
    [outcome] = plan(text, {"uid": "b1"})
    assert (outcome.matched, outcome.cancel_key, outcome.messages) == (True, "booking-b1", [])


def test_list_sends_need_no_phone_number() -> None:
    text = "rules:\n  - {name: l, source: s, event: e, send: {channel: sms, list_id: 42, body: hi}}\n"
    [outcome] = plan(text, {})
    [msg] = outcome.messages
    assert (msg.list_id, msg.to, msg.state) == (42, None, "planned")


def test_order_is_read_as_a_time_or_a_number_and_a_missing_one_is_said() -> None:
    keyed = 'key: "k"\n    order: "{{ payload.at }}"'
    [iso] = plan(sms(extra=keyed), {"to": "0411111111", "name": "A", "at": "2026-11-26T09:00:00Z"})
    assert iso.order == NOW
    [number] = plan(sms(extra=keyed), {"to": "0411111111", "name": "A", "at": 42})
    assert number.order == 42.0
    [missing] = plan(sms(extra=keyed), {"to": "0411111111", "name": "A"})
    assert missing.order is None and missing.reasons[0].startswith("order: ")
    assert "handled without ordering" in missing.reasons[0]
    assert [m.state for m in missing.messages] == ["planned"]  # the message itself still goes
    [huge] = plan(sms(extra=keyed), {"to": "0411111111", "name": "A", "at": "9" * 400})  # used to crash planning
    assert huge.order is None and "not a date/time" in huge.reasons[0]


def test_a_naive_appointment_time_is_read_in_the_zone_the_rule_names() -> None:
    extra = 'schedule: {at: "{{ payload.start }}", offset: -2h, zone: "{{ payload.tz }}"}'
    [outcome] = plan(sms(extra=extra), {"to": "0411111111", "name": "A", "start": "2026-11-30T10:30:00",
                                        "tz": "Australia/Sydney"})
    # 10:30 in Sydney (UTC+11 in summer) is 23:30 UTC the day before; two hours earlier is 21:30 UTC.
    assert outcome.messages[0].send_at == datetime(2026, 11, 29, 21, 30, tzinfo=UTC).timestamp()
    [bad] = plan(sms(extra=extra), {"to": "0411111111", "name": "A", "start": "2026-11-30T10:30:00",
                                    "tz": "Mars/Base"})
    assert bad.messages[0].state == "failed"
    assert bad.messages[0].reasons == ("schedule.zone: unknown time zone 'Mars/Base'",)
    [far] = plan(sms(extra=extra), {"to": "0411111111", "name": "A", "start": "9" * 400, "tz": "UTC"})
    assert far.messages[0].state == "failed" and "not a date/time" in far.messages[0].reasons[0]


def test_a_body_rendered_with_a_lone_surrogate_fails_that_message_only() -> None:
    # The edge refuses such bodies now; events stored before it did, or a template's own text, can still hold one.
    text = """
rules:
  - {name: greet, source: s, event: e, send: {channel: sms, to: "{{ payload.to }}", body: "Hi {{ payload.name }}"}}
  - {name: notify, source: s, event: e, send: {channel: sms, to: "{{ payload.to }}", body: "Order ready"}}
"""
    greet, notify = plan(text, {"to": "+61411111111", "name": "Ann\ud800"})
    [bad] = greet.messages
    assert bad.state == "failed"
    assert bad.reasons == ("body: lone surrogate \\ud800 at character 7 (not a character, so neither GSM-7 nor "
                           "UCS-2 can carry it)",)
    assert [(m.state, m.body) for m in notify.messages] == [("planned", "Order ready")]
