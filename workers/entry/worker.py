"""The RQ worker class Hookline runs: builds the runtime (settings, clients, rules) once in the parent,
so the work horse forked for each job starts with it instead of loading the rules again; and the connection
class RQ's own commands (`rq worker`, `rq cron`) connect with, so they read REDIS_URL as Hookline does (and
`rq cron`'s waits out a Redis restart)."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import Worker

from workers.entry.runtime import get_runtime
from workers.store.connection import connect


class HooklineWorker(Worker):
    """An RQ Worker that prepares Hookline's runtime before it forks (redis-py resets pools after a fork)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        get_runtime()


class HooklineRedis(redis.Redis):
    """`--connection-class` for RQ's commands: their `--url` may then name a Sentinel-managed Redis
    (`redis+sentinel://…`), which redis-py's own `from_url` does not read."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> redis.Redis:
        """The client `workers.store.connection.connect` builds (a plain `redis.Redis` following the primary)."""
        return connect(url, **({"socket_connect_timeout": 5} | kwargs))


CRON_RETRIES = 30
"""Attempts `rq cron` makes at each Redis call before it gives up: with the backoff capped at 5 s, about two
minutes, which covers a restart and the AOF's replay (redis-py's default gives up after about four seconds)."""


class PatientRedis(HooklineRedis):
    """`--connection-class` for `rq cron`: its calls retry through a Redis restart instead of ending the process
    (RQ's cron loop catches nothing, and an outage that lands on one of its enqueues would stop every periodic
    job until someone restarts it)."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> redis.Redis:
        """The client for `url`, retrying on connection errors (`Redis is loading` included) for a while."""
        retry = Retry(ExponentialBackoff(cap=5.0, base=0.1), CRON_RETRIES)
        return super().from_url(url, retry=retry, **kwargs)
