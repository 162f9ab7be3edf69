"""The message value: what is stored once, what the API shows, and reading records written before."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.messages import message
from workers.core.coerce import to_decimal, to_int
from workers.core.lifecycle import State
from workers.core.messages import Channel, ContactOp, Message


def test_json_round_trip_keeps_types_and_spells_from_as_clicksend_does() -> None:
    msg = message(id="msg_1", channel="voice", state="sent", to="+61411111111", **{"from": "ShopCo"},
                  estimate="0.0792", price="0.0800", reasons=["a", "b"], send_at=1790000000)
    assert (msg.channel, msg.state, msg.from_) == (Channel.VOICE, State.SENT, "ShopCo")
    assert (msg.estimate, msg.price, msg.reasons, msg.send_at) == (Decimal("0.0792"), Decimal("0.0800"), ("a", "b"),
                                                                   1790000000.0)
    shown = msg.to_json()
    assert shown["from"] == "ShopCo" and shown["estimate"] == "0.0792" and "from_" not in shown
    assert Message.from_json(shown) == msg


def test_the_stored_document_leaves_out_what_transitions_set() -> None:
    doc = message(id="msg_2", provider_id="P1", retries=2, approved_by="ann").document()
    assert not {"provider_id", "retries", "approved_by", "timeline"} & set(doc)
    assert doc["id"] == "msg_2" and doc["channel"] == "sms"


def test_an_older_record_with_unknown_keys_still_reads() -> None:
    msg = Message.from_json({"id": "m", "event_id": "e", "source": "s", "rule": "r", "channel": "sms",
                             "state": "queued", "some_future_field": 1, "retries": None})
    assert msg.retries == 0 and msg.state is State.QUEUED


def test_moved_applies_the_stored_fields_of_a_transition() -> None:
    sent = message(id="m", state="sending").moved(State.SENT, {"provider_id": "P9", "price": "0.05", "parts": 1})
    assert (sent.state, sent.provider_id, sent.price, sent.parts) == (State.SENT, "P9", Decimal("0.05"), 1)


# What the message value did before it was made cheaper (the dataclasses round trips), kept as the reference the
# fast paths must agree with.

def _reference_to_json(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out["from" if f.name == "from_" else f.name] = value
    if not msg.timeline:
        del out["timeline"]
    return out


def _reference_from_json(data: Mapping[str, Any]) -> Message:
    names = {f.name for f in dataclasses.fields(Message)}
    raw = {("from_" if k == "from" else k): v for k, v in data.items()}
    kept = {k: v for k, v in raw.items() if k in names}
    for name, convert in _REFERENCE_CONVERT.items():
        if name in kept:
            kept[name] = convert(kept[name])
    for name in ("reasons", "non_gsm", "timeline"):
        if name in kept:
            kept[name] = tuple(kept[name] or ())
    kept["channel"] = Channel(kept["channel"])
    kept["state"] = State(kept["state"])
    kept["retries"] = int(kept.get("retries") or 0)
    kept["facts"] = kept.get("facts") or {}
    kept["contact"] = kept.get("contact") or {}
    if kept.get("operation"):
        kept["operation"] = ContactOp(kept["operation"])
    for name in ("require_input", "machine_detection", "replace", "critical"):
        kept[name] = bool(kept.get(name))
    return Message(**kept)


def _float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


_REFERENCE_CONVERT: dict[str, Callable[[Any], Any]] = {
    "estimate": to_decimal, "reserved": to_decimal, "price": to_decimal,
    "send_at": _float, "updated_at": _float, "sending_since": _float, "sent_at": _float, "approved_at": _float,
    "rejected_at": _float, "created_at": lambda v: _float(v) or 0.0,
    "segments": to_int, "parts": to_int, "list_id": to_int,
    "provider_id": lambda v: None if v is None else str(v), "reserved_day": lambda v: None if v is None else str(v),
}
_LATER = ("timeline", "updated_at", "sending_since", "sent_at", "provider_id", "price", "parts", "retries", "error",
          "receipt", "approved_by", "approved_at", "approval_note", "rejected_by", "rejected_at")

# JSON as records, the API and transitions hold it: every field, some missing, some of the drifting types the
# converters accept, and keys no version knows.
_text = st.text(max_size=8)
_number = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False))
_money = st.one_of(st.none(), st.just(""), st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
                   st.floats(0, 10, allow_nan=False))
_count = st.one_of(st.none(), st.just(""), st.integers(0, 10**6), st.integers(0, 99).map(str))
_mapping = st.dictionaries(_text, st.one_of(_text, st.integers()), max_size=3)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "id": _text, "event_id": _text, "source": _text, "rule": _text,
    "channel": st.sampled_from([c.value for c in Channel]), "state": st.sampled_from([s.value for s in State]),
    "reasons": st.one_of(st.none(), st.lists(_text, max_size=3)), "non_gsm": st.lists(_text, max_size=2),
    "timeline": st.lists(_mapping, max_size=2), "contact": _mapping, "facts": _mapping,
    "receipt": st.one_of(st.none(), _mapping),
    "operation": st.one_of(st.none(), st.just(""), st.sampled_from([o.value for o in ContactOp])),
    "estimate": _money, "reserved": _money, "price": _money,
    "segments": _count, "parts": _count, "list_id": _count, "retries": st.one_of(st.none(), st.integers(0, 9)),
    "provider_id": st.one_of(st.none(), _text, st.integers()), "reserved_day": st.one_of(st.none(), _text),
    "created_at": _number, "send_at": _number, "updated_at": _number, "sending_since": _number,
    "sent_at": _number, "approved_at": _number, "rejected_at": _number,
    "require_input": st.one_of(st.booleans(), st.none(), st.integers(0, 1)), "machine_detection": st.booleans(),
    "replace": st.booleans(), "critical": st.booleans(),
}
_JSON_NAMES = ["from" if f.name == "from_" else f.name for f in dataclasses.fields(Message)]
_REQUIRED = ("id", "event_id", "source", "rule", "channel", "state")


@st.composite
def _records(draw: st.DrawFn, required: bool = True) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(_JSON_NAMES), unique=True))
    record = {name: draw(_VALUES.get(name, st.one_of(st.none(), _text))) for name in names}
    record |= {name: draw(_VALUES[name]) for name in _REQUIRED if required and name not in record}
    record |= draw(st.dictionaries(st.sampled_from(["from_", "future_field", "groups"]), _text, max_size=2))
    return record


def _same(a: Message, b: Message) -> None:
    # repr shows every field with its type (Decimal('0.0500') is not Decimal('0.05'), 1 is not 1.0 nor True)
    assert repr(a) == repr(b)
    assert type(a) is type(b) and a == b


def test_the_fast_construction_is_sound_because_init_only_stores_fields() -> None:
    # from_json, but and moved fill a new message's __dict__ instead of calling the frozen __init__; that stays
    # right only while there is nothing else __init__ would do.
    assert not hasattr(Message, "__post_init__")
    assert all(f.init for f in dataclasses.fields(Message))


@settings(max_examples=300, deadline=None)
@given(_records())
def test_from_json_and_to_json_give_what_the_reference_gives(record: dict[str, Any]) -> None:
    msg = Message.from_json(record)
    _same(msg, _reference_from_json(record))
    assert list(msg.to_json().items()) == list(_reference_to_json(msg).items())  # the same keys in the same order
    expected = {k: v for k, v in _reference_to_json(msg).items() if k not in _LATER}
    assert list(msg.document().items()) == list(expected.items())
    _same(Message.from_json(msg.to_json()), msg)
    shown = msg.to_json()  # the JSON's lists and mappings are its own: changing them leaves the message as it is
    assert not [k for k, v in shown.items()
                if isinstance(v, list | dict) and v is getattr(msg, "from_" if k == "from" else k)]


@settings(max_examples=300, deadline=None)
@given(_records(), _records(required=False), st.sampled_from(list(State)))
def test_moved_gives_what_the_old_round_trip_gave(record: dict[str, Any], fields: dict[str, Any],
                                                  state: State) -> None:
    msg = Message.from_json(record)
    _same(msg.moved(state, fields), _reference_from_json(_reference_to_json(msg) | fields | {"state": state}))
    _same(msg.moved(state), _reference_from_json(_reference_to_json(msg) | {"state": state}))


@settings(max_examples=200, deadline=None)
@given(_records(), _records(required=False))
def test_but_gives_what_dataclasses_replace_gave(record: dict[str, Any], other: dict[str, Any]) -> None:
    msg, changes = Message.from_json(record), vars(Message.from_json(_DEFAULTS_FOR_BUT | other))
    picked = {name: changes[name] for name in list(changes)[::3]}
    _same(msg.but(**picked), dataclasses.replace(msg, **picked))
    assert msg.but() == msg


_DEFAULTS_FOR_BUT = {"id": "m", "event_id": "e", "source": "s", "rule": "r", "channel": "sms", "state": "queued"}


def test_a_record_missing_or_misspelling_a_field_fails_as_it_did() -> None:
    with pytest.raises(KeyError):
        Message.from_json({"id": "m", "event_id": "e", "source": "s", "rule": "r", "state": "queued"})
    with pytest.raises(KeyError):
        Message.from_json({"id": "m", "event_id": "e", "source": "s", "rule": "r", "channel": "sms"})
    with pytest.raises(TypeError):
        Message.from_json({"event_id": "e", "source": "s", "rule": "r", "channel": "sms", "state": "queued"})
    with pytest.raises(TypeError):
        message(id="m").but(no_such_field=1)
    for bad in ({"channel": "fax"}, {"state": "lost"}, {"operation": "merge"}, {"state": ["queued"]}):
        with pytest.raises(ValueError):
            message(id="m", **bad)
    with pytest.raises(ValueError):
        message(id="m").moved("lost")  # type: ignore[arg-type]


def test_each_message_read_has_its_own_empty_mappings() -> None:
    a, b = message(id="m"), message(id="m")
    assert a.contact == {} and a.facts == {} and a.contact is not b.contact and a.facts is not b.facts
