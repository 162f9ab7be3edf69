"""redis-server killed with SIGKILL and restarted (AOF, `appendfsync always`) while events arrive: every event
answered 202 is processed and its message sent, and nothing is sent twice. Requests made while Redis is down
get 503, and the sender's retry is answered as usual (202, or 200 for one stored before its answer was lost).
The web process and `rq cron` carry on by themselves once it is back; an RQ worker whose job was running when
Redis went away exits, and is started again as a process manager would.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from tests.faults.cluster import Cluster, assert_each_sent_once, cluster, expected_messages, phone
from tests.faults.test_worker_kills import all_processed, gone_out
from tests.waiting import wait_for

pytestmark = pytest.mark.faults

MAX_EVENTS = 2000
AFTER_RESTART = 50  # events answered after the restart before the poster stops


def post_all(c: Cluster, accepted: list[str], refused: list[int], enough: threading.Event,
             stop: threading.Event) -> None:
    """Post events one after another until `enough` is set (at most MAX_EVENTS), as a source that does not pause
    for our outage; a refused one (503, or no answer) is posted again, as a sender retries, until it is accepted.
    `stop` gives up at once (the test failed)."""
    for i in range(MAX_EVENTS):
        if enough.is_set():
            return
        while not stop.is_set():
            try:
                answer = c.post({"id": f"redis-{i}", "kind": "notice", "phone": phone(i), "n": i}, timeout=5)
            except requests.RequestException:
                refused.append(i)
                continue
            if answer.status_code in (200, 202):  # 200: a retry of one stored before an answer was lost
                accepted.append(answer.json()["event_id"])
                break
            assert answer.status_code == 503, answer.text
            refused.append(i)
            time.sleep(0.05)
        time.sleep(0.01)


def test_every_accepted_event_survives_a_redis_crash_and_nothing_is_sent_twice(tmp_path: Path) -> None:
    with cluster(tmp_path, {"HOOKLINE_EVENT_BATCH": "50", "HOOKLINE_SEND_BATCH": "50"}) as c:
        c.start_simulator("--latency", "0.02")
        c.start_service()
        accepted: list[str] = []
        refused: list[int] = []
        enough, stop = threading.Event(), threading.Event()
        poster = threading.Thread(target=post_all, args=(c, accepted, refused, enough, stop), daemon=True)
        poster.start()
        try:
            wait_for(lambda: c.ledger()["accepted"] > 0, "sending under way", timeout=60)
            c.kill_redis()  # mid-stream: drains, flushes and requests in flight
            wait_for(lambda: refused, "a request to be refused while Redis is down", timeout=30)
            c.start_redis()  # same port, same data folder: the AOF is replayed
            restarted = len(accepted)
            c.note(f"redis-server restarted; {restarted} accepted so far, {len(refused)} refused")
            wait_for(lambda: len(accepted) >= restarted + AFTER_RESTART, "events accepted after the restart",
                     timeout=120)
            enough.set()
            poster.join(60)
        finally:
            stop.set()
        assert not poster.is_alive()
        expected = each_processed_and_sent_once(c, accepted, len(set(accepted)))
        assert c.dead() == [], c.report(expected)


def each_processed_and_sent_once(c: Cluster, accepted: list[str], events: int) -> dict[str, str]:
    """Wait until every accepted event is processed and its message sent, starting workers again in place of
    those that exit, as a process manager would; assert ClickSend took each of the `events` messages exactly
    once. Returns the messages, by id, with their events."""
    store = c.store()
    wait_for(lambda: not c.replace_exited_workers() and all_processed(store, accepted),
             "every accepted event to be processed", timeout=120, interval=0.5)
    expected = expected_messages(store, accepted)
    assert len(expected) == len(set(accepted)) == events, c.report(expected)
    wait_for(lambda: not c.replace_exited_workers() and gone_out(store) >= events, "every message to be sent",
             timeout=180, interval=1.0)
    assert_each_sent_once(c, expected)
    return expected
