"""The sending phases of `python -m bench`: no-op RQ jobs drained by the same workers (the baseline), then a
backlog of events → one SMS each through the real workers and the simulator (20 ms latency), clean and under
15% 429s with a 20 requests/s cap; lost and duplicated messages counted in the simulator's ledger.

Owns those phases' measurements; the processes are `bench.services`', the counters `bench.measure`'s.
"""

from __future__ import annotations

import time
from typing import Any

from rq import Queue

from bench.measure import Probe, Snapshot, cpu_ms_by_process, cpu_ms_per, sent_delta, start_drains, store_backlog
from workers.wiring import pipeline


def noop_drain(probe: Probe, n: int, timeout: float) -> dict[str, Any]:
    """`n` no-op RQ jobs on the events queue, drained by the Procfile's workers: what RQ alone costs per job."""
    q = Queue(pipeline.EVENTS_QUEUE, connection=probe.conn)
    jobs = [Queue.prepare_data("builtins.len", ([1],), result_ttl=0) for _ in range(n)]
    before = probe.snapshot()
    q.enqueue_many(jobs)
    deadline = time.perf_counter() + timeout
    while q.count or q.started_job_registry.count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{q.count} no-op jobs still queued after {timeout:.0f} s")
        time.sleep(0.05)
    after = probe.snapshot()
    seconds = after.at - before.at
    return {"jobs": n, "seconds": seconds, "per_s": n / seconds, "cpu_ms_per_job": cpu_ms_per(before, after, n)}


def send_backlog(probe: Probe, tag: str, n: int, timeout: float) -> tuple[dict[str, Any], Snapshot, Snapshot]:
    """Store `n` events, start their drains and wait until `n` more messages are sent; the figures (timed from
    the drains' start) and the snapshots from before the events were stored to the end (for the capacity
    figures, which include the ingest step's Redis work)."""
    stored_from = probe.snapshot()
    claims = store_backlog(probe.store, tag, n)
    before = probe.snapshot()
    target = before.states.get("sent", 0) + n
    start_drains(probe.conn, probe.store, claims)
    finished = probe.wait(lambda states: states.get("sent", 0) >= target, timeout)
    after = probe.snapshot()
    seconds = after.at - before.at
    ledger = sent_delta(before, after, n)
    figures = {"events": n, "seconds": seconds, "messages_per_s": n / seconds, "finished": finished,
               "cpu_ms_per_message": cpu_ms_per(before, after, n),
               "cpu_ms_per_message_by_process": cpu_ms_by_process(before, after, n),
               "calls_per_message": ledger["calls"] / n,
               **ledger}
    return figures, stored_from, after


def faulty(probe: Probe, n: int, clean_rate: float, timeout: float) -> dict[str, Any]:
    """The same backlog while the simulator refuses 15% of requests with 429 and caps them at 20/s. The 15% is
    an exact share, spread evenly: at 1,000 messages a call the phase makes only a few calls, and a coin per
    request often gave it none."""
    probe.faults(rate_429=0.15, rate_limit=20, spread=True)
    try:
        figures, _, _ = send_backlog(probe, "faulty", n, timeout)
    finally:
        probe.faults(rate_429=0.0, rate_limit=0.0, spread=False)
    return figures | {"ratio_vs_clean": figures["messages_per_s"] / clean_rate}
