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

EVENTS = 300


def post_all(c: Cluster, accepted: list[str], refused: list[int], stop: threading.Event) -> None:
    """Post EVENTS events one after another; a refused one (503, or no answer) is posted again, as a sender
    retries, until it is accepted."""
    for i in range(EVENTS):
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
        stop = threading.Event()
        poster = threading.Thread(target=post_all, args=(c, accepted, refused, stop), daemon=True)
        poster.start()
        try:
            wait_for(lambda: len(accepted) >= EVENTS // 3 and c.ledger()["accepted"] > 0,
                     "a third of the events accepted and sending under way", timeout=60)
            c.kill_redis()  # mid-stream: drains, flushes and requests in flight
            wait_for(lambda: refused, "a request to be refused while Redis is down", timeout=30)
            c.start_redis()  # same port, same data folder: the AOF is replayed
            c.note(f"redis-server restarted; {len(accepted)} accepted so far, {len(refused)} refused")
            poster.join(180)
        finally:
            stop.set()
        assert not poster.is_alive()
        expected = each_processed_and_sent_once(c, accepted, EVENTS)
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
