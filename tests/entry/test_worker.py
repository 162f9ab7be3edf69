"""The connection RQ's own commands make: the Procfile's `rq worker` and `rq cron` lines name their Redis as
`hookline up` and the fault tests start them, through Hookline's connection class, so a Sentinel URL in
REDIS_URL works for them too (shown with real processes in tests/faults/test_sentinel_failover.py)."""

from __future__ import annotations

import shlex

import redis

from tests.conftest import ROOT
from workers.entry.worker import HooklineRedis
from workers.tools.supervisor import rq_connection_args


def test_every_rq_line_of_the_procfile_names_its_redis_as_hookline_up_does() -> None:
    lines = [shlex.split(line.split(":", 1)[1]) for line in (ROOT / "Procfile").read_text().splitlines()
             if line.split(":", 1)[0] in ("worker", "callbacks", "cron")]
    assert len(lines) == 3
    want = rq_connection_args("$REDIS_URL")
    for args in lines:
        assert args[0] == "rq" and args[2:2 + len(want)] == want, args


def test_rq_connection_class_reads_a_plain_url_as_redis_py_does(redis_url: str) -> None:
    client = HooklineRedis.from_url(redis_url)
    try:
        assert client.ping()
        assert client.connection_pool.connection_kwargs["db"] == redis.Redis.from_url(
            redis_url).connection_pool.connection_kwargs["db"]
    finally:
        client.close()
