"""The periodic jobs as `rq cron` loads them: the receipt poll and the sweep for sends whose worker died run every
HOOKLINE_POLL_INTERVAL (30 s unless set), the others at their fixed intervals; and `rq cron`, as the Procfile
runs it, carrying on through a Redis restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq import Queue

from tests.conftest import ROOT
from tests.waiting import wait_for
from workers.tools.localredis import start_redis
from workers.tools.supervisor import cron_command
from workers.wiring import pipeline

OUTAGE = 8.0  # seconds Redis stays down: longer than redis-py's own retries (about four seconds) last

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


def test_the_procfile_runs_cron_as_hookline_up_does() -> None:
    [line] = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("cron:")]
    assert line.split()[1:] == ["rq", *cron_command(Path(), '"$REDIS_URL"')[1:]]


def test_cron_carries_on_through_a_redis_restart(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    server, url = start_redis(data)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    env = os.environ | {"PYTHONPATH": str(ROOT), "REDIS_URL": url, "HOOKLINE_POLL_INTERVAL": "1s"}
    with open(tmp_path / "cron.log", "wb") as log:
        cron = subprocess.Popen(cron_command(Path(sys.executable).parent, url), env=env, stdout=log, stderr=log,
                                start_new_session=True)
    client = redis.Redis.from_url(url)
    try:
        sends = Queue(pipeline.SEND_QUEUE, connection=client)
        wait_for(lambda: sends.count > 0, "cron to enqueue the receipt poll", timeout=30, interval=0.1)
        server.kill()
        server.wait(10)
        down = time.monotonic()
        wait_for(lambda: time.monotonic() - down > OUTAGE, "the outage to outlast redis-py's own retries",
                 timeout=OUTAGE + 5, interval=0.2)
        server, _ = start_redis(data, port)  # the same port and data: the AOF is replayed
        before = sends.count
        wait_for(lambda: cron.poll() is not None or sends.count > before, "cron to enqueue again", timeout=60,
                 interval=0.1)
        assert cron.poll() is None, (tmp_path / "cron.log").read_text()[-3000:]
    finally:
        client.close()
        cron.kill()
        cron.wait(10)
        server.kill()
        server.wait(10)
