"""Contact writes in rule files: `contact:` and `contact_remove:` load, fail with `file:line: rule: field: problem`,
and plan one message of channel `contact` with its number normalised and its fields rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.core.test_planning import NOW, event
from workers.core.lifecycle import State
from workers.core.messages import Channel, ContactOp
from workers.core.planning import list_members, plan_event
from workers.core.rules import parse_rule_file
from workers.core.templates import environment
from workers.errors import ConfigError
from workers.wiring.rulesdir import load_config

UPSERT = """
rules:
  - name: joins
    source: s
    event: e
    contact: {list: Customers, phone_number: "{{ payload.phone }}", first_name: "{{ payload.first }}",
              custom_1: "{{ payload.get('tier', '') }}"}
"""
REMOVE = """
rules:
  - name: leaves
    source: s
    event: e
    contact_remove: {list: 1234, phone_number: "{{ payload.phone }}"}
"""


def plan(text: str, payload: dict):  # noqa: ANN201
    rules = parse_rule_file(yaml.safe_load(text), "r.yaml", environment("UTC", "AU"), lambda n: "")
    [outcome] = plan_event(event(payload), rules, NOW, "UTC", "AU")
    return outcome


def problems_in_file(tmp_path: Path, rule: str) -> list[str]:
    (tmp_path / "sources.yaml").write_text("sources: {s: {verify: {scheme: none}}}\n")
    (tmp_path / "r.yaml").write_text(rule)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    return [str(p) for p in info.value.problems]


def test_an_upsert_plans_one_contact_message_with_the_rendered_fields() -> None:
    outcome = plan(UPSERT, {"phone": "0411 111 111", "first": "Ada"})
    [msg] = outcome.messages
    assert (msg.channel, msg.operation, msg.list_ref, msg.state) == (Channel.CONTACT, ContactOp.UPSERT, "Customers",
                                                                   State.PLANNED)
    assert msg.to == "+61411111111"
    assert msg.contact == {"first_name": "Ada"}  # custom_1 rendered empty: left as ClickSend has it
    assert msg.reasons == ("add or update the contact on list Customers",)


def test_the_same_event_plans_the_same_message_id() -> None:
    first = plan(UPSERT, {"phone": "0411 111 111", "first": "Ada"}).messages[0]
    again = plan(UPSERT, {"phone": "+61411111111", "first": "Ada"}).messages[0]
    assert first.id == again.id


def test_a_remove_names_the_list_by_id() -> None:
    [msg] = plan(REMOVE, {"phone": "+61422222222"}).messages
    assert (msg.operation, msg.list_ref, msg.to, msg.contact) == (ContactOp.REMOVE, "1234", "+61422222222", {})


def test_an_invalid_number_fails_the_write_with_a_reason() -> None:
    [msg] = plan(UPSERT, {"phone": "12345", "first": "Ada"}).messages
    assert msg.state == State.FAILED
    assert msg.reasons[0].startswith("contact.phone_number: invalid recipient")


def test_a_missing_field_fails_the_write_naming_it() -> None:
    [msg] = plan(UPSERT, {"phone": "+61411111111"}).messages
    assert msg.state == State.FAILED
    assert "contact.first_name" in msg.reasons[0] and "first" in msg.reasons[0]


def test_an_unknown_contact_field_is_a_load_error_with_its_line(tmp_path: Path) -> None:
    found = problems_in_file(tmp_path, "rules:\n  - name: a\n    source: s\n    event: e\n    contact:\n"
                                       "      list: Customers\n      phone_number: '{{ payload.p }}'\n"
                                       "      frist_name: Ada\n")
    assert found == ["r.yaml:8: a: contact.frist_name: unknown key (check its spelling)"]


def test_a_template_error_in_a_contact_field_is_a_load_error(tmp_path: Path) -> None:
    found = problems_in_file(tmp_path, "rules:\n  - name: a\n    source: s\n    event: e\n    contact:\n"
                                       "      list: Customers\n      phone_number: '{{ payload.p'\n")
    assert len(found) == 1 and found[0].startswith("r.yaml:7: a: contact.phone_number: template syntax error")


@pytest.mark.parametrize(("rule", "problem"), [
    ("contact: {phone_number: x}", "contact.list: required"),
    ("contact: {list: 0, phone_number: x}", "contact.list: must be a list id (a positive number) or a list name"),
    ("contact_remove: {list: L, phone_number: x, first_name: y}",
     "contact_remove.first_name: unknown key (check its spelling)"),
    ("contact: {list: L, phone_number: x}, send: {channel: sms, to: x, body: b}",
     "contact: give exactly one of send, cancel, contact or contact_remove"),
    ("contact: {list: L, phone_number: x}, schedule: {delay: 1m}",
     "contact: a contact write has no schedule, key, replace or order"),
])
def test_contact_shape_errors(rule: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rule_file(yaml.safe_load(f"rules:\n  - {{name: a, source: s, event: e, {rule}}}\n"), "r.yaml",
                        environment("UTC", "AU"), lambda n: "")
    assert [str(p) for p in info.value.problems] == [f"r.yaml: a: {problem}"]


LIST_SEND = """
rules:
  - name: tell-customers
    source: s
    event: e
    send: {channel: sms, to: {list: Customers}, body: "Sale: {{ payload.pct }}% off"}
"""


def test_a_send_to_a_list_plans_one_message_for_the_list() -> None:
    [msg] = plan(LIST_SEND, {"pct": 20}).messages
    assert (msg.channel, msg.list_ref, msg.to, msg.body, msg.state) == (Channel.SMS, "Customers", None,
                                                                       "Sale: 20% off", State.PLANNED)


def test_the_list_becomes_a_message_per_number_with_the_opted_out_suppressed() -> None:
    [parent] = plan(LIST_SEND, {"pct": 20}).messages
    members = list_members(parent.but(state=State.SENDING, approved_by="ann"),
                           ["+61411111111", "0422 222 222", "+61422222222", "123", "+61433333333"],
                           {"+61433333333"}, "AU")
    assert [(m.to, m.state) for m in members] == [("+61411111111", State.PLANNED), ("+61422222222", State.PLANNED),
                                                  ("123", State.FAILED), ("+61433333333", State.SUPPRESSED)]
    first = members[0]
    assert (first.body, first.channel, first.list_ref) == ("Sale: 20% off", Channel.SMS, None)
    # The approval of the send to the list, not one of its own, and kept in what is stored when it is created,
    # so that a deferred number's message still knows when it is admitted again.
    assert (first.approved_by, first.list_approved_by) == (None, "ann")
    assert first.document()["list_approved_by"] == "ann"
    assert first.reasons == ("on list Customers",)
    assert members[3].reasons == ("on list Customers", "on ClickSend's Opt-Out List")
    assert len({m.id for m in members} | {parent.id}) == 5
    again = list_members(parent, ["+61411111111"], set(), "AU")
    assert again[0].id == first.id  # the same number on the same send: the same message


@pytest.mark.parametrize(("to", "problem"), [
    ("{lst: Customers}", "send.to: a list of recipients is written {list: <list id or name>}"),
    ("{list: -3}", "send.to: must be a list id (a positive number) or a list name"),
])
def test_list_recipient_errors(to: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rule_file(yaml.safe_load(f"rules:\n  - {{name: a, source: s, event: e, send: {{channel: sms, "
                                       f"to: {to}, body: b}}}}\n"), "r.yaml", environment("UTC", "AU"), lambda n: "")
    assert [str(p) for p in info.value.problems] == [f"r.yaml: a: {problem}"]
