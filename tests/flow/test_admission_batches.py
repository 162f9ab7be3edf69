"""Admission of a whole batch against a real Redis: decided in order as if one by one (a batch that crosses the
budget admits exactly what fits, a body repeated within the batch goes once), in a number of Redis round trips
that does not grow with the batch, and with one price call per distinct (channel, country, encoding, parts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import redis

from tests.conftest import EXAMPLES_DIR, Simulator, use_policies
from tests.messages import message
from workers.core.events import Event
from workers.core.messages import Message
from workers.entry.runtime import Runtime
from workers.flow import admission
from workers.flow.admission import Request
from workers.store import keys

TABLE = Decimal("0.0792")  # the built-in price of one SMS part (no ClickSend to ask in these tests)


def sms(i: int, to: str | None = None, body: str | None = None, parts: int = 1, country: str = "AU") -> Message:
    """A planned SMS whose text really is `parts` parts long (ClickSend prices the text it is sent)."""
    number = to or {"AU": f"+6140{i:07d}", "US": f"+1415555{i:04d}"}[country]
    text = (body or f"text {i}").ljust(153 * (parts - 1) + 10 if parts > 1 else 0, ".")
    return message(id=f"msg_{i}", state="planned", to=number, body=text, country=country, segments=parts,
                   encoding="GSM-7", policy="default")


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count what every Redis connection sends while inside: one packed send is one round trip (a pipeline,
    or a script with all its keys, is sent at once)."""
    count = [0]
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        original(self, command, check_health)

    with monkeypatch.context() as m:
        m.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
        yield count


def test_a_batch_that_crosses_the_budget_mid_batch_admits_exactly_what_fits(runtime: Runtime) -> None:
    use_policies(runtime, "policies:\n  default: {daily_budget: 0.40, duplicate_window: 10m,"
                          " max_per_recipient: {count: 2, per: 1h}}\n  paging: {}\n")
    batch = [sms(1, parts=2), sms(2, parts=2), sms(3, parts=2), sms(4, parts=1)]  # 0.1584 each, then 0.0792
    outcomes = runtime.admission.admit_batch([Request(m) for m in batch], time.time())
    # 0.1584 + 0.1584 = 0.3168; a third 0.1584 would pass 0.40, the one-part message after it still fits.
    assert [o.state for o in outcomes] == ["queued", "queued", "held", "queued"]
    assert "today's spend 0.3168 + estimate 0.1584 is over daily_budget 0.4" in outcomes[2].decision.reasons
    assert [o.reservation.amount if o.reservation else None for o in outcomes] == [
        2 * TABLE, 2 * TABLE, None, TABLE]
    day = admission.day_of(runtime.settings.timezone, time.time())
    assert runtime.store.reservations.spent(day) == 5 * TABLE
    r = runtime.store.r
    # The held one took nothing: no slot in its recipient's window, no duplicate marker.
    assert not r.exists(keys.recipient_rate_key(batch[2].to or ""), keys.duplicate_key(
        admission.duplicate_digest(batch[2])))
    assert r.get(keys.duplicate_key(admission.duplicate_digest(batch[3]))) == "msg_4"


def test_a_batch_that_fills_the_budget_exactly_admits_every_message(runtime: Runtime) -> None:
    # 0.10 + 0.20 is 0.30000000000000004 in floating point, as Redis sums the spend; it is not over 0.30.
    use_policies(runtime, "policies:\n  default: {daily_budget: 0.30, prices: {sms: {default: 0.10}}}\n"
                          "  paging: {}\n")
    outcomes = runtime.admission.admit_batch([Request(sms(1)), Request(sms(2, parts=2))], time.time())
    assert [o.state for o in outcomes] == ["queued", "queued"]
    assert [o.decision.reasons[-1] for o in outcomes] == ["estimated cost 0.1", "estimated cost 0.2"]


def test_the_same_body_twice_in_one_batch_admits_one(runtime: Runtime) -> None:
    use_policies(runtime, "policies:\n  default: {duplicate_window: 10m}\n  paging: {}\n")
    first, again = sms(1, to="+61400000001", body="hello"), sms(2, to="+61400000001", body="hello")
    other = sms(3, to="+61400000001", body="something else")
    outcomes = runtime.admission.admit_batch([Request(first), Request(again), Request(other)], time.time())
    assert [o.state for o in outcomes] == ["queued", "suppressed", "queued"]
    assert outcomes[1].decision.reasons == ("same body to the same recipient within duplicate_window (600s)",)
    assert outcomes[1].reservation is None
    assert runtime.store.r.get(keys.duplicate_key(admission.duplicate_digest(first))) == "msg_1"


def test_a_recipients_window_fills_within_one_batch(runtime: Runtime) -> None:
    use_policies(runtime, "policies:\n  default: {max_per_recipient: {count: 2, per: 1h}}\n  paging: {}\n")
    now = time.time()
    batch = [sms(i, to="+61400000001") for i in range(1, 5)]
    outcomes = runtime.admission.admit_batch([Request(m) for m in batch], now)
    assert [o.state for o in outcomes] == ["queued", "queued", "scheduled", "scheduled"]
    assert outcomes[2].send_at == now + 3600  # when the first slot opens
    assert runtime.store.r.zrange(keys.recipient_rate_key("+61400000001"), 0, -1) == ["msg_1", "msg_2"]


def test_redis_round_trips_for_a_batch_do_not_grow_with_its_size(runtime: Runtime, simulator: Simulator,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url)
    runtime._client = None
    use_policies(runtime, "policies:\n  default: {daily_budget: 1000, duplicate_window: 10m,"
                          " max_per_recipient: {count: 3, per: 1h}}\n  paging: {}\n")
    # Connected, scripts loaded, the ClickSend client built: the counts below are a batch's own.
    runtime.admission.admit_batch([Request(sms(9999))], time.time())
    trips = []
    for n, offset, parts in ((5, 0, 2), (200, 1000, 4)):  # a pair of messages per number, the same text twice
        batch = [sms(offset + i, to=f"+6140{offset + i // 2:07d}", body=f"text {i // 2}",
                     parts=parts + i // 2 % 2) for i in range(n)]
        with round_trips(monkeypatch) as count:
            outcomes = runtime.admission.admit_batch([Request(m) for m in batch], time.time())
        assert [o.state for o in outcomes].count("queued") == (n + 1) // 2  # each repeat is suppressed
        trips.append(count[0])
    # Read the facts, ask two prices (each call counted in Redis), cache them, reserve: as many for 5 as for 200.
    assert trips == [5, 5]
    assert simulator.state.ledger_view()["calls"] == {"/v3/sms/price": 5}  # the warm-up's, then two per run


def test_one_price_call_per_distinct_key_not_cached(runtime: Runtime, simulator: Simulator) -> None:
    runtime.settings = runtime.settings.with_(clicksend_base_url=simulator.url)
    runtime._client = None
    batch = [sms(i, parts=1 + i % 2, country=("AU", "US", "AU")[i % 3]) for i in range(30)]
    outcomes = runtime.admission.admit_batch([Request(m) for m in batch], time.time())
    assert simulator.state.ledger_view()["calls"] == {"/v3/sms/price": 4}  # AU and US, one part and two
    assert {(m.country, m.segments): o.estimate for m, o in zip(batch, outcomes, strict=True)} == {
        ("AU", 1): TABLE, ("AU", 2): 2 * TABLE, ("US", 1): TABLE, ("US", 2): 2 * TABLE}
    runtime.admission.admit_batch([Request(m.but(id=f"{m.id}_again")) for m in batch], time.time())
    assert simulator.state.ledger_view()["calls"] == {"/v3/sms/price": 4}  # all cached now


def test_a_drain_batch_is_admitted_as_one_batch_in_event_order(runtime: Runtime) -> None:
    use_policies(runtime, "policies:\n  default: {duplicate_window: 10m, max_per_recipient: {count: 2, per: 1h}}\n"
                          "  paging: {}\n")
    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())
    ids = []
    for n, body in ((1, 7), (2, 7), (3, 8), (4, 9)):  # the first two say the same; the window holds two
        order = payload | {"id": body, "name": f"#{body}", "customer": payload["customer"] | {"phone": "+61411111111"}}
        event = Event(id=f"evt_order_{n}", source="shop", type="orders/create", external_id=str(n),
                      received_at=time.time(), payload=order)
        runtime.store.events.ingest(event, 3600, 3600, runtime.settings.partitions)
        ids.append(event.id)
    runtime.processing.process_events(ids, time.time())
    states = [runtime.store.messages.get_message(runtime.store.messages.event_message_ids(eid)[0]).state
              for eid in ids]
    assert states == ["queued", "suppressed", "queued", "scheduled"]


class Killed(BaseException):
    """The drain dying between two lines (as SIGKILL would, nothing after it runs)."""


def test_a_drain_killed_after_reserving_admits_its_own_messages_when_retried(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    use_policies(runtime, "policies:\n  default: {duplicate_window: 10m, max_per_recipient: {count: 1, per: 1h}}\n"
                          "  paging: {}\n")
    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())
    event = Event(id="evt_order_1", source="shop", type="orders/create", external_id="1", received_at=time.time(),
                  payload=payload)
    runtime.store.events.ingest(event, 3600, 3600, runtime.settings.partitions)
    create = runtime.store.messages.write_messages

    def killed(*args: Any) -> None:
        raise Killed

    monkeypatch.setattr(runtime.store.messages, "write_messages", killed)
    with pytest.raises(Killed):  # reserved its marker and slot, created nothing
        runtime.processing.process_events([event.id], time.time())
    monkeypatch.setattr(runtime.store.messages, "write_messages", create)
    runtime.processing.process_events([event.id], time.time())  # RQ runs the batch again
    [mid] = runtime.store.messages.event_message_ids(event.id)
    msg = runtime.store.messages.get_message(mid)
    assert msg.state == "queued"  # not a duplicate of itself, nor over its own slot
    assert runtime.store.r.get(keys.duplicate_key(admission.duplicate_digest(msg))) == mid
    assert runtime.store.r.zrange(keys.recipient_rate_key(msg.to or ""), 0, -1) == [mid]
