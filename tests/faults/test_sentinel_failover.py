"""A Sentinel-managed Redis failed over while events arrive: the primary (AOF, fsync always), two replicas and one
sentinel (Debian's redis-server and redis-sentinel), every Hookline process given the `redis+sentinel://` URL as
the Procfile gives it REDIS_URL. The primary is SIGKILLed mid-run and the sentinel promotes a replica.

What the README promises, shown here: every event answered 202 was on a replica before the answer (WAIT), so it
is on the new primary, processed, and its message sent exactly once (the simulator's ledger); while there is no
primary, requests get 503 (or no answer) and the sender's retry is answered as usual (202, or 200 for one
stored before its answer was lost). The web process, the workers and `rq cron` find the new primary through the
sentinel by themselves; an RQ worker whose job was running when the primary died exits, and is started again
as a process manager would (as when a plain Redis restarts).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from tests.faults.cluster import Cluster, cluster, phone
from tests.faults.test_redis_restart import each_processed_and_sent_once
from tests.sentinels import sentinels
from tests.waiting import wait_for

pytestmark = pytest.mark.faults

MAX_EVENTS = 2000
AFTER_FAILOVER = 50  # events answered after the promotion before the sender stops


class Sender:
    """Posts events from a thread, one after another, until told to stop (at most MAX_EVENTS), retrying each on
    503 or no answer as a real sender does; keeps which were answered 202, which 200 (a retry of one already
    stored) and how many were refused."""

    def __init__(self, c: Cluster):
        self.c = c
        self.accepted: list[str] = []  # answered 202
        self.repeats: list[str] = []  # answered 200: stored by an attempt whose answer was a 503 or lost
        self.refused = 0
        self.unexpected: list[str] = []
        self.posted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        for i in range(MAX_EVENTS):
            if self.stop.is_set():
                return
            while True:
                try:
                    answer = self.c.post({"id": f"ha-{i}", "kind": "notice", "phone": phone(i), "n": i}, timeout=5)
                except requests.RequestException:
                    self.refused += 1
                    continue
                if answer.status_code in (200, 202):
                    self.posted = i + 1
                    (self.accepted if answer.status_code == 202 else self.repeats).append(answer.json()["event_id"])
                    break
                if answer.status_code != 503:
                    self.unexpected.append(f"{answer.status_code} {answer.text}")
                    return
                self.refused += 1
                time.sleep(0.05)
            time.sleep(0.01)


def test_every_event_answered_202_survives_a_failover_and_is_sent_exactly_once(tmp_path: Path) -> None:
    with cluster(tmp_path, {"HOOKLINE_EVENT_BATCH": "50", "HOOKLINE_SEND_BATCH": "50"}) as c, \
            sentinels(tmp_path / "ha", c.redis_port) as ha:
        c.url_override = c.env["REDIS_URL"] = ha.url
        c.start_simulator("--latency", "0.02")
        c.start_service()
        sender = Sender(c)
        sender.thread.start()
        wait_for(lambda: c.ledger()["accepted"] > 0, "sending under way", timeout=60)
        old = ha.primary()
        c.kill_redis()  # mid-stream: requests, drains and flushes in flight
        wait_for(lambda: ha.primary() not in (None, old), "the sentinel to promote a replica", timeout=60)
        promoted = sender.posted
        c.note(f"sentinel promoted 127.0.0.1:{ha.primary()}; {promoted} events answered so far")
        # The sender posted through the failover (a webhook source does not pause for it); go on a little after.
        wait_for(lambda: sender.posted >= promoted + AFTER_FAILOVER or not sender.thread.is_alive(),
                 "events answered after the failover", timeout=120)
        sender.stop.set()
        sender.thread.join(60)
        assert not sender.thread.is_alive() and sender.unexpected == [], c.report()
        c.note(f"{len(sender.accepted)} answered 202, {len(sender.repeats)} 200 on a retry, "
               f"{sender.refused} attempts refused")
        assert sender.refused > 0, c.report()  # the failover was felt: there was a time with no primary

        events = sender.posted
        expected = each_processed_and_sent_once(c, sender.accepted + sender.repeats, events)
        store = c.store()  # through the sentinel: the new primary
        # Receipts come only through `rq cron`'s poll: all delivered means cron works on the new primary.
        wait_for(lambda: store.messages.state_counts().get("delivered", 0) == events,
                 "cron's receipt poll to deliver every message", timeout=120, interval=1.0)
        assert c.dead() == [], c.report(expected)
