"""Policy records: a batch's claims are taken in order, each whole, up to the first that no longer fits; a
duplicate marker belongs to the message that took it; the facts of a batch come back as read."""

from __future__ import annotations

import time
from decimal import Decimal

from workers.core.policies import RateLimit
from workers.entry.runtime import Runtime
from workers.store import keys
from workers.store.reservations import Claim, PriceKey

DAY = "2026-12-01"
HOUR = RateLimit(count=1, per=3600)


def test_a_duplicate_marker_is_lifted_only_by_the_message_that_holds_it(runtime: Runtime) -> None:
    store = runtime.store
    now = time.time()
    a, b = (Claim(mid, Decimal("0.1"), digest="d1", window=60) for mid in ("msg_a", "msg_b"))
    assert store.reservations.reserve(DAY, now, [a]) == 1
    assert store.reservations.reserve(DAY, now, [b]) == 0
    store.reservations.release([(DAY, b)])  # msg_b never took it: its marker stays
    assert store.reservations.is_duplicate("d1")
    store.reservations.release([(DAY, a)])
    assert not store.reservations.is_duplicate("d1")


def test_releasing_gives_back_each_claims_spend_slot_and_marker_on_its_own_day(runtime: Runtime) -> None:
    r, reservations = runtime.store.r, runtime.store.reservations
    now = time.time()
    one = Claim("msg_1", Decimal("0.30"), None, "+61400000001", HOUR, "d1", 600)
    two = Claim("msg_2", Decimal("0.20"), None, "+61400000002", HOUR, "d2", 600)
    assert reservations.reserve(DAY, now, [one]) == 1
    assert reservations.reserve("2026-12-02", now, [two]) == 1
    reservations.release([(DAY, one), ("2026-12-02", two)])
    assert reservations.spent(DAY) == reservations.spent("2026-12-02") == 0
    assert not r.exists(keys.recipient_rate_key("+61400000001"), keys.recipient_rate_key("+61400000002"),
                        keys.duplicate_key("d1"), keys.duplicate_key("d2"))


def test_claims_are_taken_in_order_up_to_the_first_that_does_not_fit_and_that_one_takes_nothing(
        runtime: Runtime) -> None:
    r, reservations = runtime.store.r, runtime.store.reservations
    now = time.time()
    claims = [Claim("msg_1", Decimal("0.40"), Decimal("1.00"), "+61400000001", HOUR, "d1", 600),
              Claim("msg_2", Decimal("0.40"), Decimal("1.00"), "+61400000002", HOUR, "d2", 600),
              Claim("msg_3", Decimal("0.40"), Decimal("1.00"), "+61400000003", HOUR, "d3", 600),  # over budget
              Claim("msg_4", Decimal("0.10"), Decimal("1.00"), "+61400000004", HOUR, "d4", 600)]  # would fit
    assert reservations.reserve(DAY, now, claims) == 2
    assert reservations.spent(DAY) == Decimal("0.80")
    assert r.zrange(keys.recipient_rate_key("+61400000002"), 0, -1) == ["msg_2"]
    assert r.get(keys.duplicate_key("d2")) == "msg_2"
    # The one over budget took neither a slot nor a marker, and nothing after it was looked at.
    assert not r.exists(keys.recipient_rate_key("+61400000003"), keys.duplicate_key("d3"),
                        keys.recipient_rate_key("+61400000004"), keys.duplicate_key("d4"))
    # A full window stops a claim as the budget does; a message already holding its slot keeps it.
    assert reservations.reserve(DAY, now, [Claim("msg_5", Decimal("0.01"), recipient="+61400000001", rate=HOUR)]) == 0
    assert reservations.reserve(DAY, now, [Claim("msg_1", Decimal("0.01"), recipient="+61400000001", rate=HOUR)]) == 1


def test_the_facts_of_a_batch_are_read_as_they_stand(runtime: Runtime) -> None:
    store = runtime.store
    now = time.time()
    store.optouts.opt_out("+61400000001", now, "sms")
    store.account.set_balance_low(True)
    assert store.reservations.reserve(DAY, now - 10, [Claim("msg_1", Decimal("0.25"), None, "+61400000002", HOUR,
                                                            "d1", 600)]) == 1
    price = PriceKey("sms", "AU", "GSM-7", 1)
    store.reservations.cache_prices({price: (Decimal("0.0792"), 60)})
    facts = store.reservations.read(DAY, now, ["+61400000001", "+61400000002"],
                                    {"+61400000002": 3600, "+61400000003": 60}, ["d1", "d2"],
                                    [price, PriceKey("sms", "US", "GSM-7", 1)])
    assert facts.standing.spent == Decimal("0.25")
    assert facts.standing.recent == {"+61400000002": (("msg_1", now - 10),), "+61400000003": ()}
    assert facts.standing.marked == {"d1": "msg_1"}
    assert facts.prices == {price: Decimal("0.0792")}
    assert facts.opted_out == {"+61400000001"} and facts.balance_low is True
