"""Callbacks against a real local origin: retries with Retry-After, 410, exhaustion and replay, and
refusal of private addresses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES_DIR
from tests.messages import message as make_message
from tests.origin_server import Origin
from workers.core.events import Event
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.entry.runtime import Runtime
from workers.errors import DestinationRefused
from workers.flow import origin as origin_mod
from workers.flow.origin import callback_id_for, check_scheme
from workers.wiring.rulesdir import RulesDir


def message(rt: Runtime, mid: str = "msg_cb1", state: str = "sent") -> Message:
    """A message (sent unless told) of a stored shop order event (the callback templates read the event)."""
    payload = json.loads((EXAMPLES_DIR / "shop-order.json").read_text())
    rt.store.events.ingest(Event(id="evt_cb", source="shop", type="orders/create", external_id="cb",
                                 received_at=time.time(),
                          payload=payload), 3600, 3600, rt.settings.partitions)
    doc = make_message(id=mid, event_id="evt_cb", state=state, to="+61411111111", body="hi")
    rt.store.messages.create_messages([doc], time.time())
    return doc


def test_500_then_429_then_200_gives_exactly_one_delivery(e2e: Runtime, origin: Origin) -> None:
    origin.script = [(500, {}), (429, {"Retry-After": "7"}), (200, {})]
    msg = message(e2e)
    assert e2e.notifier.notify([msg], "sent", time.time()) == 1
    assert e2e.notifier.notify([msg], "sent", time.time()) == 0  # the same state never calls back twice
    cid = callback_id_for(msg.id, "sent")
    sender = e2e.callback_sender()
    now = time.time()
    assert sender.deliver(cid, now) == "pending"
    assert sender.deliver(cid, now + 10) == "pending"
    assert sender.deliver(cid, now + 20) == "delivered"
    assert sender.deliver(cid, now + 30) == "delivered"  # a stray re-run sends nothing
    assert [r["answered"] for r in origin.received] == [500, 429, 200]
    assert len(origin.delivered()) == 1 and all(r["verified"] for r in origin.received)
    # every retry carries the same webhook-id, so the origin can dedupe too
    assert {r["headers"]["Webhook-Id"] for r in origin.received} == {cid}
    attempts = e2e.store.callbacks.get_callback(cid).attempts
    assert [a["status"] for a in attempts] == [500, 429, 200]


def test_retry_after_schedules_the_next_attempt(e2e: Runtime, origin: Origin) -> None:
    from rq.registry import ScheduledJobRegistry

    from workers.wiring import pipeline

    origin.script = [(429, {"Retry-After": "30"})]
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    e2e.callback_sender().deliver(cid, time.time())
    registry = ScheduledJobRegistry(queue=pipeline.queue(e2e.rq_connection, pipeline.CALLBACKS_QUEUE))
    [job_id] = registry.get_job_ids()
    assert registry.get_scheduled_time(job_id).timestamp() == pytest.approx(time.time() + 30, abs=3)


def test_410_stops_for_good_and_other_4xx_are_not_retried(e2e: Runtime, origin: Origin, work) -> None:  # noqa: ANN001
    from rq.registry import ScheduledJobRegistry

    from workers.wiring import pipeline

    origin.script = [(410, {}), (422, {})]
    a, b = message(e2e, "msg_a"), message(e2e, "msg_b")
    e2e.notifier.notify([a, b], "sent", time.time())
    sender = e2e.callback_sender()
    gone, refused = callback_id_for("msg_a", "sent"), callback_id_for("msg_b", "sent")
    now = time.time()
    assert sender.deliver(gone, now) == "failed"
    assert sender.deliver(refused, now) == "failed"
    assert [r["answered"] for r in origin.received] == [410, 422]
    for cid, status, why in ((gone, 410, "HTTP 410 Gone: the origin asked us to stop"),
                             (refused, 422, "HTTP 422: not retried")):
        record = e2e.store.callbacks.get_callback(cid)
        assert record.status == "failed"
        assert [(x["status"], x["next"]) for x in record.attempts] == [(status, "failed")]  # one attempt, no next
        notes = [t for t in e2e.store.messages.get_message(record.message_id).timeline if t.get("kind") == "callback"]
        assert [(n["result"], n["reason"]) for n in notes] == [("failed", why)]
    # No retry anywhere: none scheduled, neither left pending for the sweep; both listed for a person to replay.
    registry = ScheduledJobRegistry(queue=pipeline.queue(e2e.rq_connection, pipeline.CALLBACKS_QUEUE))
    assert registry.get_job_ids() == []
    assert e2e.store.callbacks.overdue_callbacks(now + 30 * 86400) == []
    assert origin_mod.sweep(e2e.store, e2e.enqueuer, now + 86400) == []
    assert sorted(e2e.store.callbacks.exhausted_callbacks()) == sorted([gone, refused])
    # The jobs notify enqueued, and a worker with the scheduler, send nothing more.
    work(("hookline-callbacks",), with_scheduler=True)
    assert len(origin.received) == 2
    assert [e2e.store.callbacks.get_callback(c).status for c in (gone, refused)] == ["failed", "failed"]


def test_exhausted_callbacks_are_listed_and_can_be_replayed(e2e: Runtime, origin: Origin, work) -> None:  # noqa: ANN001
    origin.script = [(500, {})] * 3
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    sender = e2e.callback_sender()
    now = time.time()
    statuses = [sender.deliver(cid, now + i * 1000) for i in range(3)]
    assert statuses == ["pending", "pending", "exhausted"]  # max_attempts: 3
    assert e2e.store.callbacks.exhausted_callbacks() == [cid]
    assert origin_mod.replay(e2e.store, e2e.enqueuer, [msg.id]) == [cid]
    assert e2e.store.callbacks.exhausted_callbacks() == []
    work(("hookline-callbacks",))
    assert e2e.store.callbacks.get_callback(cid).status == "delivered"
    assert len(origin.delivered()) == 1


CALLBACK_TOKEN = "cb-token-6f1d2c9a8b"


def test_each_attempt_keeps_the_start_of_the_answer_without_the_request_secrets(e2e: Runtime,
                                                                                origin: Origin) -> None:
    sources = Path(e2e.settings.rules_dir) / "sources.yaml"
    sources.write_text(sources.read_text().replace(
        "      allow_private: true\n",
        f"      allow_private: true\n      headers: {{Authorization: \"Bearer {CALLBACK_TOKEN}\"}}\n"))
    e2e.rules = RulesDir(Path(e2e.settings.rules_dir), e2e.settings)
    assert e2e.rules.reload()
    origin.echo = True  # the origin answers with everything it was sent, its credentials included
    origin.script = [(500, {}), (200, {})]
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    sender = e2e.callback_sender()
    now = time.time()
    assert [sender.deliver(cid, now), sender.deliver(cid, now + 10)] == ["pending", "delivered"]
    assert origin.received[0]["headers"]["Authorization"] == f"Bearer {CALLBACK_TOKEN}"
    attempts = e2e.store.callbacks.get_callback(cid).attempts
    assert [a["status"] for a in attempts] == [500, 200]
    for attempt in attempts:
        answer = json.loads(attempt["body"])
        assert answer["headers"]["Authorization"] == "[redacted]"
        assert json.loads(answer["data"])["order_id"] == str(json.loads(message_payload())["id"])
        assert CALLBACK_TOKEN not in attempt["body"] and attempt["ms"] >= 0 and attempt["at"] >= now


def message_payload() -> str:
    return (EXAMPLES_DIR / "shop-order.json").read_text()


def test_a_huge_answer_is_read_only_as_far_as_it_is_kept(e2e: Runtime, origin: Origin) -> None:
    origin.answer, origin.repeat = b"x" * 65536, 800  # 50 MiB, streamed
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    assert e2e.callback_sender().deliver(cid, time.time()) == "delivered"
    [attempt] = e2e.store.callbacks.get_callback(cid).attempts
    assert attempt["body"] == "x" * 1000 + "…"
    # The rest was never downloaded: the origin's writes stopped once the connection closed (what the sockets'
    # buffers took in is far below the whole).
    assert origin.sent_bytes < 65536 * 800 // 4


def test_private_destination_is_refused_unless_allowed(e2e: Runtime, origin: Origin, tmp_path: Path) -> None:
    rules = Path(e2e.settings.rules_dir)
    sources = rules / "sources.yaml"
    sources.write_text(sources.read_text().replace("allow_private: true", "allow_private: false"))
    e2e.rules = RulesDir(rules, e2e.settings)
    assert e2e.rules.reload()
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    assert e2e.callback_sender().deliver(cid, time.time()) == "failed"
    assert origin.received == []
    attempt = e2e.store.callbacks.get_callback(cid).attempts[0]
    assert "127.0.0.1 is a loopback address" in attempt["error"]


def test_a_callback_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(DestinationRefused):
        check_scheme("ftp://example.com/")


def test_redirects_are_followed_after_checking_the_new_address(e2e: Runtime, origin: Origin) -> None:
    origin.script = [(307, {"Location": f"{origin.url}/moved"}), (200, {})]
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    assert e2e.callback_sender().deliver(callback_id_for(msg.id, "sent"), time.time()) == "delivered"
    assert [r["path"] for r in origin.received] == ["/orders/450789469/sms", "/moved"]


def test_a_redirect_to_a_private_address_is_refused_not_followed(e2e: Runtime, origin: Origin,
                                                                   public_origin: Origin) -> None:
    # A source without allow_private whose (public) origin redirects to a loopback address: every hop goes
    # through the source's own checked session, so the redirect is refused where it would connect.
    rules = Path(e2e.settings.rules_dir)
    sources = rules / "sources.yaml"
    sources.write_text(sources.read_text().replace(origin.url, public_origin.url)
                       .replace("allow_private: true", "allow_private: false"))
    e2e.rules = RulesDir(rules, e2e.settings)
    assert e2e.rules.reload()
    public_origin.script = [(307, {"Location": f"{origin.url}/inside"})]
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    assert e2e.callback_sender().deliver(cid, time.time()) == "failed"
    assert [r["path"] for r in public_origin.received] == ["/orders/450789469/sms"]
    assert origin.received == []  # never connected to
    attempt = e2e.store.callbacks.get_callback(cid).attempts[0]
    assert "127.0.0.1 is a loopback address" in attempt["error"]


def test_a_callback_whose_job_was_lost_is_swept_and_sent_once(e2e: Runtime, origin: Origin, work) -> None:  # noqa: ANN001
    from workers.wiring import pipeline

    msg = message(e2e)
    assert e2e.notifier.notify([msg], "sent", time.time()) == 1
    pipeline.queue(e2e.rq_connection, pipeline.CALLBACKS_QUEUE).empty()  # the worker died before running it
    assert origin_mod.sweep(e2e.store, e2e.enqueuer, time.time()) == []  # not overdue yet
    cid = callback_id_for(msg.id, "sent")
    assert origin_mod.sweep(e2e.store, e2e.enqueuer, time.time() + 200) == [cid]
    assert origin_mod.sweep(e2e.store, e2e.enqueuer, time.time() + 200) == [cid]  # swept twice: two jobs…
    work(("hookline-callbacks",))
    assert len(origin.received) == 1  # …one delivery
    assert origin_mod.sweep(e2e.store, e2e.enqueuer, time.time() + 200) == []  # delivered: no longer pending


def test_a_concurrent_attempt_is_refused_by_the_lock(e2e: Runtime, origin: Origin) -> None:
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    assert e2e.store.callbacks.lock_callback(cid, 60)  # another job holds it
    assert e2e.callback_sender().deliver(cid, time.time()) == "busy"
    assert origin.received == []


def test_a_change_whose_worker_died_before_notifying_is_reported_by_the_sweep(e2e: Runtime, origin: Origin,
                                                                                 work) -> None:  # noqa: ANN001
    msg = message(e2e, "msg_cb_died", "queued")
    # What a worker killed between recording `sent` and calling origin.notify leaves behind:
    assert e2e.store.messages.transition(msg.id, State.SENDING, time.time(), "claimed")[0]
    assert e2e.store.messages.transition(msg.id, State.SENT, time.time(), "accepted",
                                         fields={"provider_id": "P1"})[0]
    assert e2e.store.callbacks.message_callback_ids(msg.id) == []
    assert e2e.notifier.sweep_unreported(time.time()) == 0  # within the grace: its worker may still be at it
    assert e2e.notifier.sweep_unreported(time.time() + 120) == 1
    assert e2e.notifier.sweep_unreported(time.time() + 120) == 0  # reported now
    work(("hookline-callbacks",))
    assert len(origin.delivered()) == 1
    assert origin.received[0]["json"]["state"] == "sent"


def test_a_change_reported_on_the_spot_leaves_nothing_for_the_sweep(e2e: Runtime, origin: Origin) -> None:
    msg = message(e2e)  # created straight into `sent`: listed until notified
    assert e2e.store.messages.unreported(time.time() + 1) == [(msg.id, "sent")]
    e2e.notifier.notify([msg], "sent", time.time())
    assert e2e.store.messages.unreported(time.time() + 1) == []
    assert 0 < e2e.store.r.ttl(f"hl:msg:{msg.id}:callbacks") <= 30 * 86400  # goes with its callbacks
    assert e2e.notifier.sweep_unreported(time.time() + 120) == 0


def test_a_pending_callback_whose_record_expired_leaves_the_lists(e2e: Runtime, origin: Origin) -> None:
    msg = message(e2e)
    e2e.notifier.notify([msg], "sent", time.time())
    cid = callback_id_for(msg.id, "sent")
    e2e.store.r.delete(f"hl:cb:{cid}")  # what CALLBACK_TTL does to an old record
    assert e2e.callback_sender().deliver(cid, time.time()) == "missing"
    assert origin_mod.sweep(e2e.store, e2e.enqueuer, time.time() + 200) == []  # not re-enqueued every minute for ever
    e2e.store.r.zadd("hl:callbacks:exhausted", {"cb_old": 1.0})
    assert e2e.store.callbacks.trim_exhausted(time.time()) == 1
    assert e2e.store.callbacks.exhausted_callbacks() == []
