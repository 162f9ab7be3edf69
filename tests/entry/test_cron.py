"""The periodic jobs as `rq cron` loads them: the receipt poll and the sweep for sends whose worker died run every
HOOKLINE_POLL_INTERVAL (30 s unless set), the others at their fixed intervals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# rq cron imports the module once per process, so each setting is loaded in a process of its own.
LOAD = """
import json, redis
from rq.cron import CronScheduler
scheduler = CronScheduler(connection=redis.Redis())
scheduler.load_config_from_file("workers.entry.cron")
print(json.dumps({job.func.__name__: job.interval for job in scheduler.get_jobs()}))
"""


def intervals(**env: str) -> dict[str, int]:
    found = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, timeout=60, check=True,
                           env={k: v for k, v in os.environ.items() if k != "HOOKLINE_POLL_INTERVAL"}
                           | {"PYTHONPATH": str(ROOT)} | env)
    return dict(json.loads(found.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("setting", "poll"), [({}, 30), ({"HOOKLINE_POLL_INTERVAL": "3s"}, 3)])
def test_the_poll_and_the_recovery_sweep_run_every_poll_interval(setting: dict[str, str], poll: int) -> None:
    got = intervals(**setting)
    assert (got["poll_feedback"], got["recover_sending"]) == (poll, poll)
    assert (got["sweep_pending_events"], got["fire_due_messages"], got["sweep_callbacks"]) == (10, 15, 60)


def test_a_bad_poll_interval_stops_cron_saying_why() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        intervals(HOOKLINE_POLL_INTERVAL="soon")
    assert "HOOKLINE_POLL_INTERVAL" in failed.value.stderr
