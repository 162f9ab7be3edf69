"""Batched writes: a batch of creations or transitions is one script call that writes each key its messages
share (a state index, the due set, an outbox, the unreported list, the outcome counts, a group set) once, and
leaves Redis exactly as the same steps taken one at a time would; records written before the batches still
move; nothing written this way outlives its retention."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings

from tests.core.test_messages import _records
from tests.flow.test_feedback import RoundTrips
from tests.store.test_messages import doc
from workers.core.lifecycle import CANCELLABLE, State
from workers.core.messages import Message
from workers.entry.runtime import Runtime
from workers.store.feedback import PROVIDER_ID_TTL
from workers.store.keys import (
    DUE,
    STATS_MESSAGES,
    UNREPORTED,
    event_key,
    event_messages_key,
    message_key,
    message_log_key,
    outbox_key,
    provider_key,
    state_index_key,
)
from workers.store.transitions import Change

NOW = 1_800_000_000.0


def _calls(r: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}


def ran(r: redis.Redis, work: Callable[[], object]) -> Counter[str]:
    """The commands Redis ran while `work` ran (those its scripts ran included), by name."""
    before = _calls(r)
    work()
    after = _calls(r)
    return Counter({k: n - before.get(k, 0) for k, n in after.items() if k != "info" and n != before.get(k, 0)})


def snapshot(r: redis.Redis) -> dict[str, Any]:
    """Every Hookline key: its value and whether it expires."""
    read: dict[str, Callable[[str], Any]] = {
        "string": r.get, "hash": r.hgetall, "list": lambda k: r.lrange(k, 0, -1),
        "set": lambda k: sorted(r.smembers(k)), "zset": lambda k: r.zrange(k, 0, -1, withscores=True)}
    return {key: (read[r.type(key)](key), r.pttl(key) > 0) for key in sorted(r.scan_iter("hl:*"))}


def fan_out(n: int, event_id: str, state: str = "queued") -> list[Message]:
    return [doc(f"msg_{event_id}_{i}", state, event_id=event_id, key=None) for i in range(n)]


def test_a_batch_writes_each_shared_key_once(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    # Every script once first: its first call loads it, which is not what is measured.
    store.messages.create_messages(fan_out(1, "evt_warm"), NOW)
    ids = store.outbox.claim_batch("sms", 10, NOW)
    store.messages.apply_many([Change(ids[0], State.SENT, "accepted")], NOW)
    store.events.mark_processed([("evt_warm", {})], NOW)
    r.hset(event_key("evt_warm"), mapping={"doc": "{}", "status": "received"})
    n = 30
    msgs = fan_out(n, "evt_b")
    assert ran(r, lambda: store.messages.create_messages(msgs, NOW)) == Counter(
        evalsha=1, exists=n, hset=n, rpush=n + 1, sadd=1, zadd=1, persist=1)
    assert ran(r, lambda: store.outbox.claim_batch("sms", n, NOW)) == Counter(
        evalsha=1, lpop=1, hmget=n, hset=n, rpush=n, zrem=1, zadd=1)
    sent = [Change(m.id, State.SENT, "accepted", {"provider_id": f"P{i}", "price": "0.05"})
            for i, m in enumerate(msgs)]
    assert ran(r, lambda: store.messages.apply_many(sent, NOW)) == Counter(
        evalsha=1, hmget=n, hset=n, rpush=n, zrem=1, zadd=2, hincrby=1)
    delivered = [Change(m.id, State.DELIVERED, "receipt", expect=frozenset({State.SENT})) for m in msgs]
    # Retention: the hash and the timeline of each, and the event's set once its last member is final.
    assert ran(r, lambda: store.messages.apply_many(delivered, NOW)) == Counter(
        evalsha=1, hmget=n, hset=n, rpush=n, pexpire=2 * n + 1, zrem=1, zadd=2, hincrby=1, smembers=1)
    assert ran(r, lambda: store.events.mark_processed([("evt_warm", {"rules": ["r"]})] * n, NOW)) == Counter(
        evalsha=1, exists=n, hset=n)


def test_a_scheduled_message_leaving_its_state_leaves_the_due_set_in_the_batchs_one_command(
        runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    store.messages.create_messages(fan_out(1, "evt_warm", "scheduled"), NOW)
    store.messages.apply_many([Change("msg_evt_warm_0", State.QUEUED, "due")], NOW)
    msgs = fan_out(20, "evt_d", "scheduled")
    store.messages.create_messages(msgs, NOW)
    assert r.zcard(DUE) == 20
    due = [Change(m.id, State.QUEUED, "due", expect=frozenset({State.SCHEDULED})) for m in msgs]
    used = ran(r, lambda: store.messages.apply_many(due, NOW))
    assert (used["zrem"], used["zadd"], used["rpush"]) == (2, 1, 21)  # the index and DUE; the outbox once
    assert r.zcard(DUE) == 0
    assert r.lrange(outbox_key("sms"), 0, -1)[-20:] == [m.id for m in msgs]


def _scenario(runtime: Runtime, msgs: list[Message], batched: bool) -> tuple[list[bool], list[str], int]:
    """Create `msgs`, change them in every way a batch can (a message moved twice, a move the lifecycle
    forbids, a missing message, notes), then claim and put back."""
    store, m = runtime.store, runtime.store.messages
    if batched:
        created = m.create_messages(msgs, NOW)
    else:
        created = [flag for msg in msgs for flag in m.create_messages([msg], NOW)]
    a, b, c, d, e, f = (msg.id for msg in msgs)
    changes = [
        Change(b, State.QUEUED, "due", expect=frozenset({State.SCHEDULED})),
        Change(a, State.SENDING, "claimed", {"sending_since": NOW}),
        Change(a, State.SENT, "accepted", {"provider_id": "P1", "price": "0.05"}),
        Change(a, State.DELIVERED, "receipt", {"receipt": {"status_code": "201"}}, expect=frozenset({State.SENT})),
        Change(c, State.CANCELLED, "booking moved", expect=CANCELLABLE),
        Change(e, State.FAILED, "refused"),
        Change(d, State.QUEUED, "not from suppressed"),
        Change("msg_missing", State.QUEUED, "no such message"),
        Change(f, State.SCHEDULED, "later", send_at=NOW + 600),
        Change(f, State.SCHEDULED, "later still", send_at=NOW + 900),
    ]
    notes = [(b, {"at": NOW, "kind": "receipt", "reason": "pending"}), ("msg_missing", {"at": NOW, "kind": "x"})]
    if batched:
        moved = m.apply_many(changes, NOW, notes)
    else:
        moved = [m.transition(ch.id, ch.target, NOW, ch.reason, expect=ch.expect, fields=ch.fields,
                              send_at=ch.send_at)[0] for ch in changes]
        for mid, entry in notes:
            m.note(mid, entry)
    claimed = store.outbox.claim_batch("sms", 2, NOW)
    requeued = store.outbox.requeue(claimed, NOW, "429")
    return created + moved, claimed, requeued


def test_a_batch_leaves_redis_as_the_same_steps_one_at_a_time(runtime: Runtime) -> None:
    r = runtime.store.r
    msgs = [doc("msg_s1", "queued"), doc("msg_s2", "scheduled"), doc("msg_s3", "held", key=None),
            doc("msg_s4", "suppressed", event_id="evt_s2"), doc("msg_s5", "queued", event_id="evt_s2"),
            doc("msg_s6", "held", event_id="evt_s3", key="other")]
    one_by_one = _scenario(runtime, msgs, batched=False)
    alone = snapshot(r)
    r.delete(*alone)
    assert _scenario(runtime, msgs, batched=True) == one_by_one
    assert snapshot(r) == alone
    assert one_by_one == ([True] * 6 + [True] * 6 + [False, False, True, True], ["msg_s2"], 1)
    assert r.lrange(outbox_key("sms"), 0, -1) == ["msg_s2"]  # put back at the front; the others were dropped
    assert r.zrange(DUE, 0, -1, withscores=True) == [("msg_s6", NOW + 900)]
    assert r.zrange(UNREPORTED, 0, -1) == sorted(
        ["msg_s1 sent", "msg_s1 delivered", "msg_s4 suppressed", "msg_s5 failed"])


def test_a_re_run_of_a_batch_creates_queues_and_counts_nothing(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    msgs = [*fan_out(3, "evt_r"), doc("msg_r_s", "suppressed", event_id="evt_r", key=None),
            doc("msg_r_d", "scheduled", event_id="evt_r", key="k-r")]
    assert store.messages.create_messages(msgs, NOW) == [True] * 5
    before = snapshot(r)
    assert store.messages.create_messages(msgs, NOW + 5) == [False] * 5
    assert snapshot(r) == before


def test_records_written_before_the_batches_still_move_count_and_expire(runtime: Runtime) -> None:
    """A record of an older version: no channel, rule or groups fields (its document has the labels), in the
    due set with its send time."""
    store, r = runtime.store, runtime.store.r
    msg = doc("msg_old", "scheduled", key=None)
    r.hset(message_key("msg_old"), mapping={"doc": json.dumps(msg.document()), "state": "scheduled",
                                             "updated_at": NOW, "send_at": repr(NOW + 60)})
    r.rpush(message_log_key("msg_old"), json.dumps({"at": NOW, "from": None, "to": "planned", "reason": "old"}))
    r.zadd(state_index_key("scheduled"), {"msg_old": NOW})
    r.zadd(DUE, {"msg_old": NOW + 60})
    assert store.messages.transition("msg_old", State.QUEUED, NOW, "due", expect={State.SCHEDULED}) == (
        True, "scheduled")
    assert r.zcard(DUE) == 0
    assert store.outbox.claim_batch(msg.channel, 5, NOW) == ["msg_old"]
    assert store.messages.apply_many([Change("msg_old", State.SENT, "accepted")], NOW) == [True]
    assert store.messages.apply_many([Change("msg_old", State.DELIVERED, "receipt")], NOW) == [True]
    assert r.hgetall(STATS_MESSAGES) == {f"{msg.channel}|{msg.rule}|sent": "1",
                                         f"{msg.channel}|{msg.rule}|delivered": "1"}
    assert [r.zcard(state_index_key(s)) for s in ("scheduled", "queued", "sending", "delivered")] == [0, 0, 0, 1]
    assert all(r.pttl(k) > 0 for k in (message_key("msg_old"), message_log_key("msg_old")))


def test_every_key_a_finished_batch_wrote_expires(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    msgs = [doc(f"msg_x{i}", "queued", event_id=f"evt_x{i % 2}", key=f"k{i % 3}") for i in range(6)]
    store.messages.create_messages(msgs, NOW)
    ids = store.outbox.claim_batch("sms", 10, NOW)
    store.messages.apply_many([Change(i, State.SENT, "accepted") for i in ids], NOW)
    store.messages.apply_many([Change(i, State.DELIVERED, "receipt") for i in ids], NOW,
                              [(i, {"at": NOW, "kind": "receipt"}) for i in ids])
    per_message = [k for k in r.scan_iter("hl:*") if k.startswith(("hl:msg:", "hl:event:", "hl:key:"))]
    assert len(per_message) == 6 * 2 + 2 + 3
    assert all(r.pttl(k) > 0 for k in per_message)


def test_a_note_for_an_expired_record_leaves_nothing_behind(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    assert store.messages.apply_many([], NOW, [("msg_gone", {"at": NOW, "kind": "reply"})]) == []
    store.messages.note("msg_gone", {"at": NOW, "kind": "reply"})
    assert not r.exists(message_log_key("msg_gone"))


def test_batches_larger_than_one_command_piece(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    msgs = fan_out(1200, "evt_big")
    assert store.messages.create_messages(msgs, NOW) == [True] * 1200
    assert r.llen(outbox_key("sms")) == 1200
    assert r.scard(event_messages_key("evt_big")) == 1200
    assert store.outbox.claim_batch("sms", 1200, NOW) == [m.id for m in msgs]
    assert r.zcard(state_index_key("sending")) == 1200
    assert store.outbox.requeue([m.id for m in msgs], NOW, "429") == 1200
    assert r.lrange(outbox_key("sms"), 0, -1) == [m.id for m in msgs]
    assert r.zcard(state_index_key("queued")) == 1200


def test_marking_a_batch_of_events_touches_only_stored_ones(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    r.hset(event_key("evt_m1"), mapping={"doc": "{}", "status": "received"})
    r.hset(event_key("evt_m2"), mapping={"doc": "{}", "status": "received"})
    store.events.mark_processed([("evt_m1", {"rules": ["a"], "messages": 2}), ("evt_gone", {"rules": []}),
                                 ("evt_m2", {})], NOW + 1)
    assert r.hgetall(event_key("evt_m1")) == {"doc": "{}", "status": "processed", "processed_at": repr(NOW + 1),
                                              "rules": '["a"]', "messages": "2"}
    assert r.hgetall(event_key("evt_m2")) == {"doc": "{}", "status": "processed", "processed_at": repr(NOW + 1)}
    assert not r.exists(event_key("evt_gone"))
    store.events.mark_processed([("evt_gone", {"status": "again", "processed_at": 1})], NOW)  # repeated fields
    assert not r.exists(event_key("evt_gone"))
    r.hset(event_key("evt_m3"), "doc", "{}")  # a record none of whose fields the mark writes is still marked
    store.events.mark_processed([("evt_m3", {})], NOW)
    assert r.hgetall(event_key("evt_m3")) == {"doc": "{}", "status": "processed", "processed_at": repr(NOW)}
    store.events.mark_processed([("evt_m2", {"error": "boom"})], NOW + 2, status="failed")
    assert r.hmget(event_key("evt_m2"), "status", "failed_at", "error") == ["failed", repr(NOW + 2), '"boom"']


def test_cancelling_a_key_is_one_script_call_whatever_its_size(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    store.messages.create_messages([doc(f"msg_c{i}", "scheduled", event_id=f"evt_c{i % 2}", key="k-c")
                                    for i in range(12)], NOW)
    used = ran(r, lambda: store.messages.cancel_by_key("k-c", NOW, "replaced", except_event="evt_c0"))
    # The key's set read; each message's event read; the cancels in one call, which settles both sets the
    # cancelled messages are in (it knows their states, and stops at the first member that can still change).
    assert (used["smembers"], used["hget"], used["evalsha"]) == (3, 12 + 1, 1)
    assert store.messages.key_message_ids("k-c") == sorted(f"msg_c{i}" for i in range(12))
    assert {store.messages.message_state(f"msg_c{i}") for i in range(1, 12, 2)} == {"cancelled"}
    assert {store.messages.message_state(f"msg_c{i}") for i in range(0, 12, 2)} == {"scheduled"}
    assert r.pttl(event_messages_key("evt_c1")) > 0 and r.pttl(event_messages_key("evt_c0")) == -1


def test_a_batch_is_one_round_trip(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured on the socket: whatever the batch's size, creating it, claiming it and moving it (with notes)
    cost one send each."""
    store = runtime.store
    store.messages.create_messages(fan_out(1, "evt_w"), time.time())  # loads the scripts
    store.messages.apply_many([Change("msg_evt_w_0", State.CANCELLED, "warm")], time.time())
    store.outbox.claim_batch("sms", 1, time.time())
    trips = RoundTrips(monkeypatch)
    msgs = fan_out(50, "evt_rt")
    assert trips.of(lambda: store.messages.create_messages(msgs, NOW)) == 1
    assert trips.of(lambda: store.outbox.claim_batch("sms", 50, NOW)) == 1
    assert trips.of(lambda: store.messages.apply_many([Change(m.id, State.SENT, "accepted") for m in msgs], NOW,
                                                      [(m.id, {"at": NOW}) for m in msgs])) == 1


def test_a_strike_is_counted_with_its_expiry_in_one_round_trip(runtime: Runtime,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    runtime.store.r.ping()  # the connection's own handshake is not what is measured
    trips = RoundTrips(monkeypatch)
    strikes: list[int] = []
    assert trips.of(lambda: strikes.extend(runtime.store.outbox.strike("sms", "429") for _ in range(2))) == 2
    assert strikes == [1, 2]
    assert 0 < runtime.store.r.ttl(f"{outbox_key('sms')}:strikes:429") <= 3600


def test_a_sent_batchs_provider_ids_are_remembered_in_one_command(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    store.feedback.index_provider_ids({"P-warm": "msg_warm"})  # loads the script
    pairs = {f"P-{i}": f"msg_p{i}" for i in range(30)}
    assert ran(r, lambda: store.feedback.index_provider_ids(pairs)) == Counter(evalsha=1, set=30)
    assert [r.get(provider_key(pid)) for pid in pairs] == list(pairs.values())
    assert all(PROVIDER_ID_TTL - 5 < r.ttl(provider_key(pid)) <= PROVIDER_ID_TTL for pid in pairs)
    assert ran(r, lambda: store.feedback.index_provider_ids({})) == Counter()


def test_which_messages_exist_is_one_command_while_none_does(runtime: Runtime) -> None:
    store, r = runtime.store, runtime.store.r
    msgs = fan_out(40, "evt_e")
    assert ran(r, lambda: store.messages.existing(m.id for m in msgs)) == Counter(exists=1)
    store.messages.create_messages(msgs[5:7], NOW)  # a killed run's
    assert store.messages.existing(m.id for m in msgs) == {msgs[5].id, msgs[6].id}
    assert store.messages.existing([]) == set()


# A drain sends the messages it has just written (jobs._send_planned); its claim tells it which records are
# still as written (their version: when each last changed and how long its timeline is), and only the others
# are read back.


def test_a_claim_reads_back_only_the_records_changed_since_they_were_written(runtime: Runtime) -> None:
    store, m, r = runtime.store, runtime.store.messages, runtime.store.r
    msgs = fan_out(7, "evt_h")
    written = {w.id: w for w in m.write_messages(msgs, NOW) if w is not None}
    assert sorted(written) == sorted(x.id for x in msgs)
    a, b, c, d, e, f, g = (x.id for x in msgs)
    # What others may do before this process claims them: another flush claims one and puts it back ...
    assert store.outbox.claim_batch("sms", 1, NOW + 1) == [a]
    assert store.outbox.requeue([a], NOW + 2, "429") == 1
    # ... or sends one, is told THROTTLED, and its retry is queued again, with a retry counted on its record;
    assert m.apply_many([Change(b, State.SENDING, "claimed", {"sending_since": NOW + 1}),
                         Change(b, State.SCHEDULED, "THROTTLED", {"retries": 1}, send_at=NOW + 3),
                         Change(b, State.QUEUED, "retry time reached")], NOW + 3) == [True] * 3
    # a person cancels one; a note is added to one's timeline;
    assert m.apply_many([Change(c, State.CANCELLED, "cancelled", expect=CANCELLABLE)], NOW + 1) == [True]
    m.apply_many([], NOW + 1, [(d, {"at": NOW + 1, "kind": "note"})])
    # and one is cancelled, expires and is planned again (the same id) by another write, as long a timeline.
    m.apply_many([Change(g, State.CANCELLED, "cancelled", expect=CANCELLABLE)], NOW + 1)
    r.delete(message_key(g), message_log_key(g))
    again = msgs[6].but(reasons=("planned again",))
    assert m.create_messages([again], NOW + 4) == [True]
    claim = store.outbox.claim("sms", 10, NOW + 5)
    assert claim.ids == [a, b, d, e, f, g]  # the cancelled one dropped, each once
    got: list[Message | None] = []
    used = ran(r, lambda: got.extend(m.claimed_messages(claim, written)))
    assert used == Counter(hgetall=4)  # a, b, d and g read; e and f as written
    as_stored = m.get_messages(claim.ids)
    assert [repr(x) for x in got] == [repr(x) for x in as_stored]
    by_id = {x.id: x for x in got if x is not None}
    assert by_id[b].retries == 1 and by_id[g].reasons == ("planned again",)
    assert {by_id[i].state for i in claim.ids} == {State.SENDING}
    assert by_id[e].sending_since == by_id[e].updated_at == NOW + 5


def test_nothing_is_spared_when_nothing_was_written_here(runtime: Runtime) -> None:
    store, m = runtime.store, runtime.store.messages
    m.create_messages(fan_out(3, "evt_n"), NOW)
    claim = store.outbox.claim("sms", 10, NOW + 1)
    got: list[Message | None] = []
    assert ran(store.r, lambda: got.extend(m.claimed_messages(claim, {}))) == Counter(hgetall=3)
    assert got == m.get_messages(claim.ids)


_example = itertools.count()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_records())
def test_a_record_claimed_as_written_gives_what_reading_it_gives(runtime: Runtime, record: dict[str, Any]) -> None:
    # Any message a drain may write (its fields of any type the converters take; an event id that reads back as
    # a number): what the claim makes of what was written is, type for type, what reading the record gives.
    labels = {k: record[k] if isinstance(record.get(k), str) else k for k in ("event_id", "rule", "source")}
    msg = Message.from_json(record | labels | {"id": f"msg_p{next(_example)}", "state": "queued"})
    m = runtime.store.messages
    [written] = m.write_messages([msg], NOW)
    assert written is not None
    claim = runtime.store.outbox.claim(msg.channel, 1, NOW + 1)
    assert claim.ids == [msg.id]
    got: list[Message | None] = []
    assert ran(runtime.store.r, lambda: got.extend(m.claimed_messages(claim, {msg.id: written}))) == Counter()
    assert [repr(x) for x in got] == [repr(x) for x in m.get_messages(claim.ids)]
