"""What the benchmark reads around each phase: wall time, CPU of the measured processes, the simulator's
ledger (what ClickSend accepted and how often it was called), Redis's INFO counters and Hookline's message
states; and the backlog of events a phase starts from.

Owns reading and differencing those; starting processes is `bench.services`, judging is `bench.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import requests

from bench.services import Services, cpu_seconds
from workers.core.events import Event
from workers.store import DrainClaim, Store
from workers.wiring import pipeline
from workers.wiring.settings import DEFAULT_PARTITIONS

# The calls sending makes (the cron's receipt polls run whatever is sent, and are the receipts phase's figure).
SEND_CALLS = ("/send", "/price")
POLL_EVERY = 0.2  # seconds between checks while a phase runs; each check is one pipelined read


@dataclass(frozen=True)
class Snapshot:
    """The counters at one moment."""

    at: float
    cpu_by: dict[str, float]  # CPU seconds so far by kind of process (redis, web, worker, callbacks, cron)
    ledger: dict[str, Any]
    info: dict[str, Any]
    commands: dict[str, int]
    states: dict[str, int]


@dataclass
class Probe:
    """Reads the counters of one benchmark run."""

    services: Services
    store: Store
    conn: redis.Redis
    http: requests.Session
    polls: int = 0  # state checks made by the probe itself, subtracted from Redis's command counts

    @classmethod
    def create(cls, services: Services) -> Probe:
        """A probe on `services`' Redis and simulator."""
        return cls(services, Store.from_url(services.redis_url, 3600), redis.Redis.from_url(services.redis_url),
                   requests.Session())

    def states(self) -> dict[str, int]:
        """Messages in each state."""
        self.polls += 1
        return self.store.messages.state_counts()

    def snapshot(self) -> Snapshot:
        """Everything, now."""
        info = self.conn.info("stats") | self.conn.info("memory")
        commands = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in self.conn.info("commandstats").items()}
        cpu_by = {kind: cpu_seconds(pids) for kind, pids in self.services.measured_pids().items()}
        return Snapshot(time.perf_counter(), cpu_by, self.ledger(), info, commands, self.states())

    def ledger(self) -> dict[str, Any]:
        """The simulator's ledger."""
        return dict(self.http.get(f"{self.services.sim_url}/_sim/ledger", timeout=30).json())

    def faults(self, **settings: Any) -> None:
        """Change the simulator's fault settings."""
        self.http.put(f"{self.services.sim_url}/_sim/faults", json=settings, timeout=10).raise_for_status()

    def wait(self, done: Callable[[dict[str, int]], bool], timeout: float) -> bool:
        """Check the message states every POLL_EVERY seconds until `done` says so; False after `timeout`."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if done(self.states()):
                return True
            if exited := self.services.exited():
                raise RuntimeError(f"a benchmark process died: {exited}")
            time.sleep(POLL_EVERY)
        return False


def store_backlog(store: Store, tag: str, n: int) -> list[DrainClaim]:
    """`n` events stored and pending, one SMS each, the drains not started yet; returns the drain leases the
    ingest step handed out (what the web edge would enqueue: one, or one per partition the events went to)."""
    now = time.time()
    claims = []
    for i in range(n):
        event = Event(id=f"evt_{tag}_{i}", source="bench", type="order", external_id=f"{tag}-{i}", received_at=now,
                      payload={"n": f"{tag}-{i}", "phone": f"+6141{i:07d}"})
        claim = store.events.ingest(event, 3600, 3600, DEFAULT_PARTITIONS).drain  # the processes' default count
        if claim:
            claims.append(claim)
    return claims


def start_drains(conn: redis.Redis, store: Store, claims: list[DrainClaim]) -> None:
    """Enqueue the drains for `claims`, as the web edge does after an ingest that claimed a lease."""
    enqueuer = pipeline.Enqueuer(conn, store.outbox)
    for claim in claims:
        enqueuer.drain(claim)


def sent_delta(before: Snapshot, after: Snapshot, expected: int) -> dict[str, Any]:
    """What ClickSend accepted between two snapshots, against `expected` messages: send and price calls, every
    call by path, refusals, lost and duplicated (a message accepted twice adds two to `accepted` and one to `unique`)."""
    b, a = before.ledger, after.ledger
    calls = {k: v - b["calls"].get(k, 0) for k, v in a["calls"].items()}
    unique = a["unique"] - b["unique"]
    return {"calls": sum(v for k, v in calls.items() if k.endswith(SEND_CALLS)),
            "refused": calls.get("429", 0), "calls_by_path": {k: v for k, v in calls.items() if v},
            "lost": max(0, expected - unique), "duplicates": (a["accepted"] - b["accepted"]) - unique}


def cpu_ms_per(before: Snapshot, after: Snapshot, n: int) -> float:
    """Milliseconds of CPU of every measured process (Redis included) per item."""
    return sum(cpu_ms_by_process(before, after, n).values())


def cpu_ms_by_process(before: Snapshot, after: Snapshot, n: int) -> dict[str, float]:
    """Milliseconds of CPU per item by kind of process."""
    return {k: (v - before.cpu_by.get(k, 0.0)) * 1000 / n if n else 0.0 for k, v in after.cpu_by.items()}
