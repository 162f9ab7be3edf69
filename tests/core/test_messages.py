"""The message value: what is stored once, what the API shows, and reading records written before."""

from __future__ import annotations

from decimal import Decimal

from tests.messages import message
from workers.core.lifecycle import State
from workers.core.messages import Channel, Message


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
