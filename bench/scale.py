"""The scale phase of `python -m bench`: a second group of processes (its own working directory, web and
workers, as a second machine) joins the first on the same Redis, and one backlog is drained by both.

Owns that phase's measurement: the drain jobs' RQ records (`started_at`, `ended_at`, the worker's name, the
events each drained) are collected while the phase runs, because RQ deletes them a minute after they end.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rq import Queue
from rq.job import Job

from bench.measure import Probe, cpu_ms_per, sent_delta, start_drains, store_backlog
from bench.report import drain_overlap, share_of
from workers.wiring import pipeline

COLLECT_EVERY = 1.0  # seconds; far below the 60 s RQ keeps a finished drain's record


def scale(probe: Probe, n: int, one_group_rate: float, second_prefix: str, timeout: float) -> dict[str, Any]:
    """Drain `n` events with both groups running; overlap of the drains and the second group's share."""
    claims = store_backlog(probe.store, "scale", n)
    before = probe.snapshot()
    target = before.states.get("sent", 0) + n
    seen: dict[str, tuple[float, float, str, int]] = {}
    began = time.time()
    start_drains(probe.conn, probe.store, claims)
    deadline = time.perf_counter() + timeout
    finished = False
    while not finished and time.perf_counter() < deadline:
        finished = probe.wait(lambda states: states.get("sent", 0) >= target, COLLECT_EVERY)
        _collect(probe, seen)
    after = probe.snapshot()
    _collect(probe, seen)
    # Drains of this phase that did work (one that found the lease held drained nothing).
    worked = [d for d in seen.values() if d[3] > 0 and d[0] >= began - 1]
    by_worker: dict[str, int] = {}
    for _, _, worker, events in worked:
        by_worker[worker] = by_worker.get(worker, 0) + events
    seconds = after.at - before.at
    return {"events": n, "seconds": seconds, "messages_per_s": n / seconds, "finished": finished,
            "ratio_vs_one_group": n / seconds / one_group_rate, "cpu_ms_per_message": cpu_ms_per(before, after, n),
            "drain_jobs": len(worked), "drain_overlap": drain_overlap((d[0], d[1]) for d in worked),
            "second_host_share": share_of(by_worker, second_prefix),
            "events_by_group": {g: sum(v for k, v in by_worker.items() if k.startswith(f"bench-{g}-"))
                                for g in ("a", "b")},
            **{k: v for k, v in sent_delta(before, after, n).items() if k in ("lost", "duplicates")}}


def _collect(probe: Probe, seen: dict[str, tuple[float, float, str, int]]) -> None:
    """Add every finished drain job not seen yet: (started, ended, worker name, events drained)."""
    registry = Queue(pipeline.EVENTS_QUEUE, connection=probe.conn).finished_job_registry
    new = [i for i in registry.get_job_ids() if i not in seen]
    for job in Job.fetch_many(new, connection=probe.conn):
        if job is None:
            continue
        if "drain" not in (job.func_name or "") or not job.started_at or not job.ended_at:
            seen[job.id] = (0.0, 0.0, "", 0)  # not a drain: skipped from now on
            continue
        result = job.return_value()
        # Its result gone (it outlived its record): counted as a drain that worked, with one event.
        events = int(result.get("events", 0)) if isinstance(result, dict) else 1
        seen[job.id] = (_epoch(job.started_at), _epoch(job.ended_at), job.worker_name or "", events)


def _epoch(at: datetime) -> float:
    """RQ's times are UTC, naive or not."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
