"""ClickSend misbehaving as it can: 30% of requests refused with 429, 5% failing with 500 before anything is
accepted, 2% of sends accepted and then never answered. Every message is delivered, none twice, and no
message spends more retries than its budget (a 429 or an unanswered send spends none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.cluster import Cluster, assert_each_sent_once, cluster, expected_messages, phone
from tests.faults.test_worker_kills import all_processed
from tests.waiting import wait_for
from workers.flow.sender import MAX_RETRIES

pytestmark = pytest.mark.faults

EVENTS = 200


def post(c: Cluster, i: int) -> str:
    answer = c.post({"id": f"cs-{i}", "kind": "notice", "phone": phone(i), "n": i})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["event_id"])


def test_429s_500s_and_hanging_sends_deliver_everything_once_within_the_retry_budget(tmp_path: Path) -> None:
    # Small batches and a high rate make many calls, so each fault lands on several of them.
    env = {"HOOKLINE_SEND_BATCH": "10", "HOOKLINE_SEND_RATE": "100"}
    with cluster(tmp_path, env) as c:
        c.start_simulator("--rate-429", "0.30", "--rate-500", "0.05", "--hang-rate", "0.02")
        c.start_service()
        accepted = []
        # At least one of each, whatever the draw: the first send call fails with 500, the next one hangs.
        c.faults(rate_429=0.0, rate_500=1.0)
        accepted.append(post(c, 0))
        wait_for(lambda: c.ledger()["calls"].get("500", 0) > 0, "a 500", timeout=60)
        c.faults(rate_500=0.0, hang_rate=1.0)
        wait_for(lambda: c.ledger()["calls"].get("hang", 0) > 0, "a send accepted and left hanging", timeout=90)
        c.faults(rate_429=0.30, rate_500=0.05, hang_rate=0.02)
        for i in range(1, EVENTS):
            accepted.append(post(c, i))
        store = c.store()
        wait_for(lambda: all_processed(store, accepted), "every event to be processed", timeout=120, interval=0.5)
        expected = expected_messages(store, accepted)
        assert len(expected) == EVENTS
        wait_for(lambda: store.messages.state_counts().get("delivered", 0) >= EVENTS,
                 "every message to be delivered", timeout=240, interval=1.0)
        ledger = assert_each_sent_once(c, expected)
        assert ledger["calls"].get("429", 0) > 0, ledger["calls"]  # the faults really happened
        assert ledger["calls"].get("500", 0) > 0 and ledger["calls"].get("hang", 0) > 0, ledger["calls"]
        c.note(f"calls {ledger['calls']}")
        retries = {mid: m.retries for mid in expected if (m := store.messages.get_message(mid, with_log=False))}
        # Retries are for ClickSend's per-message THROTTLED; a 429, a 500 or a hang spends none of them.
        assert set(retries.values()) == {0}, (MAX_RETRIES, c.report(expected))
