"""Templates: sandboxed, strict about missing fields, with date, money and phone filters."""

from __future__ import annotations

import pytest

from workers.core.templates import compile_template, environment, render
from workers.errors import RenderError

ENV = environment("Australia/Sydney", "AU")


def out(source: str, **context: object) -> str:
    return render(compile_template(ENV, source), context, "body")


def test_missing_field_fails_with_its_name_instead_of_sending_blank() -> None:
    with pytest.raises(RenderError, match=r"body: missing field \(first_name is missing\)"):
        out("Hi {{ payload.first_name }},", payload={})


def test_sandbox_refuses_unsafe_attributes() -> None:
    with pytest.raises(RenderError, match="unsafe"):
        out("{{ payload.__class__.__mro__ }}", payload={})


@pytest.mark.parametrize("source", ['{{ payload.pop("total") }}', '{{ payload.update({"total": 0}) }}',
                                    '{{ payload.items_.append(1) }}'])
def test_a_template_cannot_change_the_event_the_next_rule_reads(source: str) -> None:
    payload = {"total": 25, "items_": []}
    with pytest.raises(RenderError, match="unsafe"):
        out(source, payload=payload)
    assert payload == {"total": 25, "items_": []}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('{{ t | datetime("%H:%M") }}', "21:00"),  # UTC in, configured zone out
        ('{{ t | datetime("%H:%M", "Europe/London") }}', "10:00"),
        ('{{ naive | datetime("%H:%M %Z") }}', "09:15 AEDT"),  # naive times are read in the configured zone
        ('{{ naive | datetime("%H:%M %Z", "Europe/London") }}', "09:15 GMT"),  # …or in the zone shown, if named
        ('{{ epoch | datetime("%Y-%m-%d") }}', "2026-11-27"),
        ('{{ "25" | money }}', "$25.00"),
        ('{{ 1234.5 | money("GBP") }}', "£1,234.50"),
        ('{{ "9.999" | money("CHF") }}', "10.00 CHF"),
        ('{{ "0411 111 111" | phone }}', "+61 411 111 111"),
        ('{{ "+61411111111" | phone("national") }}', "0411 111 111"),
        ("{{ missing | default('n/a') }}", "n/a"),
    ],
)
def test_filters(source: str, expected: str) -> None:
    context = {"t": "2026-11-27T10:00:00Z", "naive": "2026-11-27T09:15:00", "epoch": 1795780800}
    assert out(source, **context) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('{{ "soon" | datetime }}', "not a date/time"),
        ('{{ "abc" | money }}', "not an amount"),
        ('{{ "call me" | phone }}', "not a phone number"),
        ('{{ "2026-01-01" | datetime("%H", "Mars/Base") }}', "unknown time zone"),
    ],
)
def test_filter_failures_fail_the_message_with_a_reason(source: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        out(source)


def test_runaway_recursion_fails_the_message_not_the_worker() -> None:
    with pytest.raises(RenderError, match="recursion too deep"):
        out("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}")


@pytest.mark.parametrize(("source", "expected"), [
    ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
    ("{% set ns = namespace(n=0) %}{% for x in [1, 2] %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}", "3"),
    ("{{ dict(a=1).a }}", "1"),
    ("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}", "aba"),
    ("{% set j = joiner('; ') %}{% for x in [1, 2] %}{{ j() }}{{ x }}{% endfor %}", "1; 2"),
    # A context value of a global's name is the template's, as in Jinja.
    ("{{ range }}", "shadowed"),
])
def test_jinja_globals_are_there_in_every_render(source: str, expected: str) -> None:
    """Each template keeps a plain copy of the environment's globals (faster to copy into a render's context than
    Jinja's ChainMap over them): the same names, rendered the same every time."""
    template = compile_template(ENV, source)
    context = {"range": "shadowed"} if "{{ range }}" in source else {}
    assert [render(template, context, "body") for _ in range(2)] == [expected, expected]
    assert dict(template.globals) == dict(ENV.globals)


@pytest.mark.parametrize(("recipient", "currency", "expected"), [
    ("+61412345678", "USD", "US$25.00"), ("+61412345678", "AUD", "$25.00"), ("+14155552671", "USD", "$25.00"),
    ("+14155552671", "AUD", "A$25.00"), ("+447911123456", "GBP", "£25.00"), ("+442079460958", "USD", "US$25.00"),
    ("+61400000", "USD", "$25.00"), ("0412 345 678", "USD", "$25.00"), ("+", "AUD", "A$25.00"),
])
def test_money_marks_a_currency_that_is_not_the_recipients(recipient: str, currency: str, expected: str) -> None:
    assert out(f'{{{{ 25 | money("{currency}") }}}}', recipient=recipient) == expected
