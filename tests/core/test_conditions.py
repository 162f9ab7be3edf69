"""`when:` conditions: every operator, numbers sent as strings, any/all/not, and load-time errors."""

from __future__ import annotations

import pytest

from workers.core.conditions import compile_condition
from workers.errors import ConditionError

DOC = {
    "type": "orders/create",
    "payload": {
        "total_price": "25.00",
        "count": 3,
        "status": "paid",
        "tags": ["vip", "wholesale"],
        "note": "Leave at the back door",
        "customer": {"phone": "+61411111111", "email": None},
    },
}


@pytest.mark.parametrize(
    ("when", "holds"),
    [
        ({"payload.status": "paid"}, True),
        ({"payload.status": "refunded"}, False),
        ({"payload.total_price": {"eq": 25}}, True),  # "25.00" equals 25 as a number
        ({"payload.total_price": {"eq": "25"}}, False),  # but not as a string
        ({"payload.status": {"ne": "refunded"}}, True),
        ({"payload.status": {"in": ["paid", "pending"]}}, True),
        ({"payload.status": {"not_in": ["paid", "pending"]}}, False),
        ({"payload.total_price": {"gt": 20}}, True),
        ({"payload.total_price": {"gt": 25}}, False),
        ({"payload.total_price": {"gte": 25}}, True),
        ({"payload.total_price": {"lt": "30.5"}}, True),
        ({"payload.total_price": {"lte": 24.99}}, False),
        ({"payload.count": {"gte": 3, "lt": 4}}, True),
        ({"payload.status": {"gt": 1}}, False),  # not a number: never greater
        ({"payload.note": {"matches": "(?i)back door"}}, True),
        ({"payload.note": {"matches": "^front"}}, False),
        ({"payload.customer.phone": {"exists": True}}, True),
        ({"payload.customer.email": {"exists": True}}, False),  # null counts as absent
        ({"payload.missing": {"exists": False}}, True),
        ({"payload.tags": {"contains": "vip"}}, True),
        ({"payload.note": {"contains": "door"}}, True),
        ({"payload.tags": {"contains": "retail"}}, False),
        ({"any": [{"payload.status": "refunded"}, {"payload.count": 3}]}, True),
        ({"any": [{"payload.status": "refunded"}, {"payload.count": 4}]}, False),
        ({"not": {"payload.tags": {"contains": "vip"}}}, False),
        ({"not": {"payload.status": "refunded"}}, True),
        ({"all": [{"payload.count": 3}, {"payload.status": "paid"}]}, True),
        ({"type": "orders/create", "payload.total_price": {"gte": 20}}, True),
        ({}, True),
    ],
)
def test_operator_table(when: dict, holds: bool) -> None:
    ok, reasons = compile_condition(when).evaluate(DOC)
    assert ok is holds
    assert (reasons == []) is holds


def test_failure_reasons_say_what_was_found() -> None:
    _, reasons = compile_condition({"payload.total_price": {"gte": 100}}).evaluate(DOC)
    assert reasons == ["payload.total_price gte 100: got '25.00'"]


def test_a_path_function_given_the_wrong_type_fails_the_test_not_the_event() -> None:
    ok, reasons = compile_condition({"length(payload.total_price)": {"gt": 2}}).evaluate({"payload": {
        "total_price": 25}})
    assert not ok
    assert reasons[0].startswith("length(payload.total_price): In function length(), invalid type")


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"payload.x": {"bigger": 1}}, "unknown operator 'bigger'"),
        ({"payload.x": {"in": "a"}}, "needs a list"),
        ({"payload.x": {"gt": "lots"}}, "needs a number"),
        ({"payload.x": {"matches": "("}}, "bad regular expression"),
        ({"payload.x": {"exists": "yes"}}, "needs true or false"),
        ({"payload..x": 1}, "bad path"),
        ({"any": []}, "non-empty list"),
        ({"payload.x": {}}, "empty operator mapping"),
    ],
)
def test_malformed_conditions_fail_at_load(when: dict, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        compile_condition(when)


def test_a_nan_or_infinite_string_is_not_a_number_for_comparisons() -> None:
    # Decimal parses them, and comparing Decimal('NaN') raises: the condition must simply not hold.
    cond = compile_condition({"payload.total": {"gt": 10}})
    for value in ("NaN", "sNaN", "Infinity", "-inf"):
        ok, _ = cond.evaluate({"payload": {"total": value}})
        assert not ok
