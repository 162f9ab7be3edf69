"""Stored templates in the pure core: a rule naming `clicksend:<id or name>`, ClickSend `{placeholders}` filled
from the rule's `send.placeholders` beside Jinja2 expressions, and every way a message fails with a reason
instead of going out with a placeholder left in it."""

from __future__ import annotations

import pytest

from workers.core.events import Event
from workers.core.lifecycle import State
from workers.core.planning import plan_event
from workers.core.rules import parse_rule_file
from workers.core.storedtemplates import (
    NOT_FETCHED,
    Snapshot,
    StoredTemplate,
    compile_snapshot,
    stored_template_problems,
)
from workers.core.templates import environment
from workers.errors import ConfigError

ENV = environment("UTC", "AU")
ORDER = Event(id="evt_1", source="shop", type="orders/create", external_id="1", received_at=1.7e9,
              payload={"name": "#1001", "customer": {"first_name": "Ada", "phone": "+61411111111"}})


def rules(template: str = "clicksend:welcome", placeholders: dict | None = None, extra: str = "") -> list:
    send = {"channel": "sms", "to": "{{ payload.customer.phone }}", "template": template}
    if placeholders is not None:
        send["placeholders"] = placeholders
    data = {"rules": [{"name": "welcome", "source": "shop", "event": "orders/*", "send": send}]}
    return parse_rule_file(data, "stored.yaml", ENV, lambda name: extra)


def snapshot(*rows: tuple[int, str, str]) -> Snapshot:
    return compile_snapshot(ENV, [StoredTemplate(*row) for row in rows])


def planned(snap: Snapshot | None, **kw) -> object:  # noqa: ANN003
    [outcome] = plan_event(ORDER, rules(**kw), 1.7e9, "UTC", "AU", snap)
    [message] = outcome.messages
    return message


FIRST = {"first_name": "{{ payload.customer.first_name }}"}


def test_clicksend_placeholders_and_jinja_expressions_render_together() -> None:
    snap = snapshot((7, "welcome", "Hi {first_name}, order {{ payload.name }} is in. {% if payload.name %}"
                                   "Thanks, {first_name}!{% endif %}"))
    message = planned(snap, placeholders=FIRST)
    assert message.state == State.PLANNED
    assert message.body == "Hi Ada, order #1001 is in. Thanks, Ada!"


def test_a_template_is_found_by_id_or_by_name_in_any_case() -> None:
    snap = snapshot((7, "Welcome", "Hi {first_name}"), (8, "other", "Bye"))
    assert planned(snap, template="clicksend:7", placeholders=FIRST).body == "Hi Ada"
    assert planned(snap, template="clicksend:WELCOME", placeholders=FIRST).body == "Hi Ada"


def test_a_placeholder_value_is_itself_a_template_and_is_not_rendered_again() -> None:
    event_with_braces = {"first_name": "{{ payload.customer.first_name }} {last_name}"}
    message = planned(snapshot((7, "welcome", "Hi {first_name}")), placeholders=event_with_braces)
    assert message.body == "Hi Ada {last_name}"  # the value is text: its braces are no placeholder


def test_a_placeholder_the_rule_does_not_give_fails_the_message_saying_which() -> None:
    message = planned(snapshot((7, "welcome", "Hi {first_name} {custom_1}")), placeholders=FIRST)
    assert message.state == State.FAILED
    assert message.reasons == ("send.template: clicksend:welcome: uses {custom_1}, which the rule's "
                               "send.placeholders does not give",)


def test_an_unknown_placeholder_fails_the_message_naming_it() -> None:
    message = planned(snapshot((7, "welcome", "Hi {FirstName}")), placeholders=FIRST)
    assert message.state == State.FAILED
    assert message.reasons[0].startswith("send.template: clicksend:welcome: unknown placeholder {FirstName} "
                                         "(ClickSend's placeholders are the contact fields: phone_number, first_name")


def test_a_missing_payload_field_in_a_placeholder_fails_the_message() -> None:
    message = planned(snapshot((7, "welcome", "Hi {first_name}")),
                      placeholders={"first_name": "{{ payload.customer.nickname }}"})
    assert message.state == State.FAILED
    assert message.reasons == ("send.placeholders.first_name: missing field (nickname is missing)",)


def test_a_missing_or_ambiguous_template_fails_the_message() -> None:
    missing = planned(snapshot((8, "other", "Bye")), placeholders=FIRST)
    assert missing.state == State.FAILED
    assert missing.reasons == ("send.template: clicksend:welcome: no stored template with that name on the "
                               "ClickSend account",)
    twice = planned(snapshot((7, "welcome", "a"), (9, "Welcome", "b")))
    assert twice.reasons == ("send.template: clicksend:welcome: several stored templates have that name "
                             "(ids 7, 9): name one by id",)


def test_without_a_clicksend_account_the_message_fails_saying_so() -> None:
    message = planned(None, placeholders=FIRST)
    assert message.state == State.FAILED
    assert message.reasons == (f"send.template: clicksend:welcome: {NOT_FETCHED}",)


def test_a_jinja_syntax_error_in_the_stored_body_fails_the_message() -> None:
    message = planned(snapshot((7, "welcome", "Hi {{ payload.name ")))
    assert message.state == State.FAILED
    assert message.reasons[0].startswith("send.template: clicksend:welcome: template syntax error:")


def test_the_load_check_reports_each_rule_that_cannot_use_its_template() -> None:
    lines = {("stored.yaml", "welcome", ("send", "template")): 9}
    problems = stored_template_problems(rules(placeholders=FIRST), snapshot((8, "other", "Bye")),
                                        lambda *where: lines.get(where))
    assert [str(p) for p in problems] == ["stored.yaml:9: welcome: send.template: clicksend:welcome: no stored "
                                          "template with that name on the ClickSend account"]
    ungiven = stored_template_problems(rules(), snapshot((7, "welcome", "Hi {first_name}")), lambda *where: None)
    assert [p.message for p in ungiven] == ["clicksend:welcome: uses {first_name}, which the rule's "
                                            "send.placeholders does not give"]
    assert stored_template_problems(rules(placeholders=FIRST), snapshot((7, "welcome", "Hi {first_name}")),
                                    lambda *where: None) == []


@pytest.mark.parametrize(("template", "placeholders", "problem"), [
    ("clicksend:", None, "send.template: name the stored template: clicksend:<id or name>"),
    ("templates/x.j2", FIRST, "send.placeholders: placeholders go with a stored template (template: "
                              "clicksend:<id or name>)"),
    ("clicksend:welcome", {"nickname": "x"}, "send.placeholders.nickname.key: Must be one of: phone_number, "),
])
def test_rules_that_misuse_stored_templates_are_load_errors(template: str, placeholders: dict | None,
                                                            problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rules(template, placeholders, extra="Hi")
    assert any(str(p).startswith(f"stored.yaml: welcome: {problem}") for p in caught.value.problems), \
        caught.value.problems


def test_a_file_template_still_reads_its_file() -> None:
    [rule] = rules("templates/x.j2", extra="Hello {{ payload.name }}")
    assert rule.send.stored is None and rule.send.body.render(payload={"name": "#1"}) == "Hello #1"
