"""Reminders (scheduled messages) that fall due while every worker is down — killed with SIGKILL, their RQ
scheduler with them — go out within seconds of the workers coming back, each exactly once: `rq cron` kept
queueing the due sweep meanwhile, and the first worker back runs it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.cluster import assert_each_sent_once, cluster, expected_messages, phone
from tests.faults.test_worker_kills import all_processed, gone_out
from tests.waiting import wait_for

pytestmark = pytest.mark.faults

REMINDERS = 20
DUE_IN = 15.0  # seconds from posting: time to plan them with the workers up, then take the workers down


def test_reminders_due_while_every_worker_was_down_go_out_when_they_return(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.start_simulator()
        c.start_service()
        due = time.time() + DUE_IN
        at = datetime.fromtimestamp(due, tz=UTC).isoformat()
        accepted = []
        for i in range(REMINDERS):
            answer = c.post({"id": f"remind-{i}", "kind": "booking", "phone": phone(i), "n": i, "at": at})
            assert answer.status_code == 202, answer.text
            accepted.append(answer.json()["event_id"])
        store = c.store()
        wait_for(lambda: all_processed(store, accepted), "the reminders to be planned", timeout=60, interval=0.2)
        expected = expected_messages(store, accepted)
        assert store.messages.state_counts().get("scheduled") == REMINDERS, c.report(expected)
        assert time.time() < due, "planning took longer than the reminders' lead time; nothing was tested"

        c.kill_all_workers("every worker down before the reminders fall due")
        wait_for(lambda: time.time() > due + 3, "the reminders to fall due with no worker up", timeout=DUE_IN + 10,
                 interval=0.2)
        assert gone_out(store) == 0 and c.ledger()["accepted"] == 0, c.report(expected)

        back = time.time()
        c.start_worker()
        c.start_worker()
        c.start_callback_worker()
        c.note("workers back")
        wait_for(lambda: gone_out(store) >= REMINDERS, "every reminder to go out", timeout=60, interval=0.2)
        c.note(f"every reminder out {time.time() - back:.1f}s after the workers came back")
        assert_each_sent_once(c, expected)
        assert c.dead() == [], c.report(expected)
