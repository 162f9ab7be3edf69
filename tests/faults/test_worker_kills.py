"""Workers killed with SIGKILL while 2,000 messages go through: mid-flush (ClickSend accepted the batch, its
reply not yet read), mid-drain, and at random moments. Every message is sent exactly once, none is lost, and
a drain killed with its lease is taken over within seconds (the lease is short and renewed while it works).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.faults.cluster import Cluster, assert_each_sent_once, cluster, expected_messages, phone, randomness
from tests.waiting import wait_for
from workers.store import Store
from workers.store.keys import event_key
from workers.wiring import pipeline

pytestmark = pytest.mark.faults

MESSAGES = 2000
FIRST = 100  # events posted before the mid-flush kill


def statuses(store: Store, event_ids: list[str]) -> dict[str, int]:
    """How many of `event_ids` are in each processing status."""
    pipe = store.r.pipeline(transaction=False)
    for eid in event_ids:
        pipe.hget(event_key(eid), "status")
    counts: dict[str, int] = {}
    for status in pipe.execute():
        counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def all_processed(store: Store, event_ids: list[str]) -> bool:
    return statuses(store, event_ids) == {"processed": len(event_ids)}


def gone_out(store: Store) -> int:
    """Messages ClickSend took: sent, and those whose receipt has arrived since."""
    counts = store.messages.state_counts()
    return counts.get("sent", 0) + counts.get("delivered", 0)


class Poster:
    """Posts events `start`… from a thread at a steady pace, keeping the ids of those answered 202."""

    def __init__(self, c: Cluster, accepted: list[str], start: int, stop: int, every: float):
        self.c, self.accepted, self.range, self.every = c, accepted, range(start, stop), every
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        for i in self.range:
            answer = self.c.post({"id": f"kill-{i}", "kind": "notice", "phone": phone(i), "n": i})
            if answer.status_code != 202:
                self.errors.append(f"event {i}: {answer.status_code} {answer.text[:200]}")
                return
            self.accepted.append(answer.json()["event_id"])
            time.sleep(self.every)


def kill_mid_drain(c: Cluster, store: Store, accepted: list[str], rand_delay: float) -> None:
    """Kill the worker running a drain job, start another, and wait until every event accepted so far is
    processed: with the lease lapsing seconds after its holder died, well before the bound."""
    name = wait_for(lambda: c.running(pipeline.DRAIN_EVENTS), "a drain job to be running", timeout=60,
                    interval=0.005)
    time.sleep(rand_delay)  # somewhere inside the batch
    c.kill_worker(name, f"mid-drain (+{rand_delay:.3f}s into it)")
    c.start_worker()
    so_far = list(accepted)
    # 60 s: four times the lease plus a sweep; the lease this replaced kept new events waiting five minutes.
    wait_for(lambda: all_processed(store, so_far), f"the {len(so_far)} events accepted so far to be processed "
             "after a drain was killed with its lease", timeout=60, interval=0.2)
    c.note(f"all {len(so_far)} events accepted so far processed")


def test_2000_messages_through_five_sigkills_are_each_sent_exactly_once(tmp_path: Path,
                                                                         request: pytest.FixtureRequest) -> None:
    rand = randomness(request)
    env = {"HOOKLINE_EVENT_BATCH": "100", "HOOKLINE_SEND_BATCH": "200"}
    with cluster(tmp_path, env) as c:
        c.start_simulator("--latency", "0.02")
        c.start_service()
        store = c.store()
        accepted: list[str] = []

        # 1. Mid-flush: ClickSend has accepted the batch and its reply hangs when the worker dies.
        c.faults(hang_rate=1.0, hang_seconds=60.0)
        first = Poster(c, accepted, 0, FIRST, 0.0)
        first.run()
        wait_for(lambda: c.ledger()["accepted"] > 0, "ClickSend to accept the first batch", timeout=60)
        # The send is a drain's own (it sends what it planned) or a flush job's: whichever it is, it hangs.
        # 0.3 s is longer than any other of these jobs runs here, and shorter than the simulator takes to make the
        # accepted batch's receipts final (0.5 s; a receipt would settle the batch before the kill).
        sending = wait_for(lambda: c.stuck({pipeline.DRAIN_EVENTS, pipeline.FLUSH_OUTBOX}, 0.3),
                           "the send to be hanging", timeout=30, interval=0.05)
        c.kill_worker(sending, "mid-send: ClickSend accepted the batch, its reply not yet read")
        c.faults(hang_rate=0.0)
        c.start_worker()
        assert store.messages.state_counts().get("sending", 0) > 0, c.report()

        # 2-5. The rest arrive steadily while drains and a worker at random are killed.
        rest = Poster(c, accepted, FIRST, MESSAGES, 0.004)
        rest.thread.start()
        kill_mid_drain(c, store, accepted, rand.uniform(0.0, 0.3))
        kill_mid_drain(c, store, accepted, rand.uniform(0.0, 0.3))
        for _ in range(2):
            time.sleep(rand.uniform(0.2, 2.0))
            victim = rand.choice(sorted(c.workers))
            doing = "a drain" if c.running(pipeline.DRAIN_EVENTS) == victim else "anything"
            c.kill_worker(victim, f"at a random moment (running {doing})")
            c.start_worker()
        rest.thread.join(120)
        assert not rest.thread.is_alive() and rest.errors == [], (rest.errors, c.report())
        assert len(accepted) == MESSAGES
        c.note("all events posted")

        wait_for(lambda: all_processed(store, accepted), "every accepted event to be processed", timeout=120,
                 interval=0.5)
        c.note(f"all events processed; messages {store.messages.state_counts()}")
        expected = expected_messages(store, accepted)
        assert len(expected) == MESSAGES, c.report(expected)
        # The messages the killed flush left `sending` wait for their lease (120 s), then are found in
        # ClickSend's history and marked sent, not sent again.
        wait_for(lambda: gone_out(store) >= MESSAGES, "every message to be sent", timeout=300, interval=1.0)
        c.note("every message sent")
        ledger = assert_each_sent_once(c, expected)
        assert ledger["accepted"] == MESSAGES
        states = store.messages.state_counts()
        assert {k: v for k, v in states.items() if v and k not in ("sent", "delivered")} == {}, c.report(expected)
        assert c.dead() == [], c.report(expected)
        # The killed flush's batch reached ClickSend: it was settled from ClickSend's own records (a receipt,
        # or history), never sent again.
        killed_batch = [store.messages.get_message(mid) for mid in list(expected)[:FIRST]]
        settled = {next(t["reason"] for t in m.timeline if t.get("to") == "sent") for m in killed_batch
                   if [t.get("to") for t in m.timeline].count("sending") == 1}
        assert settled & {"delivery receipt proves it was accepted", "found in ClickSend history"}, settled
