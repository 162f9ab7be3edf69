"""The connection RQ's own commands make: the Procfile's `rq worker` and `rq cron` lines name their Redis as
`hookline up` and the fault tests start them, through Hookline's connection class, so a Sentinel URL in
REDIS_URL works for them too (shown with real processes in tests/faults/test_sentinel_failover.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import redis
import rq
from rq import Queue

from tests.conftest import ROOT
from workers.entry.worker import HooklineRedis
from workers.tools.supervisor import rq_connection_args
from workers.wiring import pipeline


def test_every_rq_line_of_the_procfile_names_its_redis_as_hookline_up_does() -> None:
    lines = {line.split(":", 1)[0]: shlex.split(line.split(":", 1)[1])
             for line in (ROOT / "Procfile").read_text().splitlines()}
    for kind in ("worker", "callbacks", "cron"):
        args, want = lines[kind], rq_connection_args("$REDIS_URL", patient=kind == "cron")
        assert args[0] == "rq" and args[2:2 + len(want)] == want, args


def test_rq_connection_class_reads_a_plain_url_as_redis_py_does(redis_url: str) -> None:
    client = HooklineRedis.from_url(redis_url)
    try:
        assert client.ping()
        assert client.connection_pool.connection_kwargs["db"] == redis.Redis.from_url(
            redis_url).connection_pool.connection_kwargs["db"]
    finally:
        client.close()


def note(what: str) -> None:
    """A job that records that it ran, in order."""
    rq.get_current_job().connection.rpush("test:ran", what)


def test_the_procfiles_worker_takes_turns_between_planning_and_sending(redis_client: redis.Redis,
                                                                         redis_url: str) -> None:
    # With a drain waiting per partition, a worker that always served the events queue first would leave every
    # flush behind the whole backlog's planning.
    conn = redis.Redis.from_url(redis_url)  # raw bytes, as RQ wants them; `redis_client` emptied the database
    for n in range(4):
        Queue(pipeline.EVENTS_QUEUE, connection=conn).enqueue(note, f"plan-{n}")
    for n in range(2):
        Queue(pipeline.SEND_QUEUE, connection=conn).enqueue(note, f"send-{n}")
    line = next(shlex.split(line.split(":", 1)[1]) for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("worker:"))
    args = [a.replace("$REDIS_URL", redis_url) for a in line if a != "--with-scheduler"]
    subprocess.run([str(Path(sys.executable).parent / "rq"), args[1], "--burst", *args[2:]], check=True,
                   cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT), "REDIS_URL": redis_url}, timeout=60,
                   capture_output=True)
    assert [x.decode() for x in conn.lrange("test:ran", 0, -1)] == [
        "plan-0", "send-0", "plan-1", "send-1", "plan-2", "plan-3"]
