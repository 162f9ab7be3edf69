"""Admission races through processing against a real Redis: two workers admitting messages to one number at the
same moment. Both read the facts before either reserves (a barrier holds them there), so the race is lost for
certain: the loser must turn into the matching outcome and leave no marker, slot or spend behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import use_policies
from tests.flow.test_approvals import order_event
from tests.messages import message
from workers.core.messages import Message
from workers.entry.runtime import Runtime
from workers.flow import admission
from workers.flow.admission import Request
from workers.store import keys

NUMBER = "+61411111111"
POLICY = ("policies:\n  default: {duplicate_window: 10m, max_per_recipient: {count: %d, per: 1h},"
          " daily_budget: 10}\n  paging: {}\n")


def both_read_before_either_reserves(monkeypatch: pytest.MonkeyPatch, records: object, fact: str) -> None:
    """Make the next two admissions meet after reading `fact` (a ReservationRecords method), before reserving;
    later readers (the loser reading again) pass straight through."""
    original: Callable[..., Any] = getattr(records, fact)
    barrier = threading.Barrier(2, timeout=20)
    arrivals = iter(range(2))

    def read_then_wait(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        if next(arrivals, None) is not None:
            barrier.wait()
        return found

    monkeypatch.setattr(records, fact, read_then_wait)


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread; their results in order (a failure in any fails the test)."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def spent_today(rt: Runtime) -> Decimal:
    return rt.store.reservations.spent(admission.day_of(rt.settings.timezone, time.time()))


def test_two_admissions_of_the_same_body_to_one_number_queue_one_and_suppress_the_other(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    use_policies(runtime, POLICY % 5)
    both_read_before_either_reserves(monkeypatch, runtime.store.reservations, "read")
    ids = concurrently(lambda: order_event(runtime, 1, NUMBER, body_id=7),  # two events, the same text
                       lambda: order_event(runtime, 2, NUMBER, body_id=7))
    msgs = {m.state: m for m in runtime.store.messages.get_messages(ids)}
    assert sorted(msgs) == ["queued", "suppressed"]
    winner, loser = msgs["queued"], msgs["suppressed"]
    assert runtime.store.messages.get_message(loser.id).timeline[-1]["reason"] == (
        "same body to the same recipient within duplicate_window (600s); " + admission.RACED)
    r = runtime.store.r
    assert r.lrange(keys.outbox_key("sms"), 0, -1) == [winner.id]
    assert r.get(keys.duplicate_key(admission.duplicate_digest(winner))) == winner.id  # the winner's marker
    assert r.zrange(keys.recipient_rate_key(NUMBER), 0, -1) == [winner.id]  # the loser took no slot
    assert loser.reserved is None
    assert spent_today(runtime) == winner.reserved  # and no budget


def test_two_admissions_racing_for_the_last_rate_slot_defer_one_and_release_its_marker(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    use_policies(runtime, POLICY % 1)  # one message per hour to a number
    both_read_before_either_reserves(monkeypatch, runtime.store.reservations, "read")
    ids = concurrently(lambda: order_event(runtime, 1, NUMBER, body_id=1),  # two different texts
                       lambda: order_event(runtime, 2, NUMBER, body_id=2))
    msgs = {m.state: m for m in runtime.store.messages.get_messages(ids)}
    assert sorted(msgs) == ["queued", "scheduled"]
    winner, loser = msgs["queued"], msgs["scheduled"]
    r = runtime.store.r
    slot = r.zscore(keys.recipient_rate_key(NUMBER), winner.id)
    assert r.zrange(keys.recipient_rate_key(NUMBER), 0, -1) == [winner.id]
    assert loser.send_at == slot + 3600  # deferred until the winner's slot opens
    why = runtime.store.messages.get_message(loser.id).timeline[-1]["reason"]
    assert why == "max_per_recipient 1 per 3600s reached (1 sent): deferred; " + admission.RACED
    assert r.get(keys.duplicate_key(admission.duplicate_digest(winner))) == winner.id
    assert not r.exists(keys.duplicate_key(admission.duplicate_digest(loser)))  # the loser gave its marker back
    assert r.lrange(keys.outbox_key("sms"), 0, -1) == [winner.id]
    assert loser.reserved is None and spent_today(runtime) == winner.reserved
    # When the slot opens the loser goes: nothing of its lost attempt stands in its way.
    assert runtime.processing.fire(loser.id, loser.send_at + 1)
    assert runtime.store.messages.message_state(loser.id) == "queued"
    assert r.get(keys.duplicate_key(admission.duplicate_digest(loser))) == loser.id


def test_two_concurrent_batches_never_overfill_a_recipients_window_or_the_budget(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # A window of 3 per hour to NUMBER and a budget of 5 SMS (5 × 0.0792 = 0.396 ≤ 0.40), for two batches that
    # each ask for 4 to NUMBER and 3 to others, and both read the facts before either reserves.
    use_policies(runtime, POLICY.replace("daily_budget: 10", "daily_budget: 0.40") % 3)
    both_read_before_either_reserves(monkeypatch, runtime.store.reservations, "read")

    def batch(tag: str) -> list[Message]:
        return [message(id=f"msg_{tag}{i}", state="planned", to=NUMBER if i < 4 else f"+6140000{tag}{i:03d}",
                        body=f"{tag} text {i}", country="AU", segments=1, encoding="GSM-7") for i in range(7)]

    batches = {"1": batch("1"), "2": batch("2")}
    results = concurrently(*(lambda msgs=msgs: runtime.admission.admit_batch([Request(m) for m in msgs], time.time())
                             for msgs in batches.values()))
    outcomes = {m.id: o for msgs, result in zip(batches.values(), results, strict=True)
                for m, o in zip(msgs, result, strict=True)}
    queued = sorted(mid for mid, o in outcomes.items() if o.state == "queued")
    r = runtime.store.r
    assert len(queued) == 5  # what the budget allows, across both batches
    assert spent_today(runtime) == sum(outcomes[mid].reservation.amount for mid in queued) <= Decimal("0.40")
    window = r.zrange(keys.recipient_rate_key(NUMBER), 0, -1)
    assert len(window) == 3 and set(window) <= set(queued)  # never more than the window, only the queued
    assert all(o.reservation is None for o in outcomes.values() if o.state != "queued")
    # The batch that reserved second decided again with what the first had taken, and says so.
    assert sum(admission.RACED in o.decision.reasons for o in outcomes.values()) == 1
    assert {o.state for mid, o in outcomes.items() if mid not in queued} <= {"held", "scheduled"}
