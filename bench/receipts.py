"""The receipts phase of `python -m bench`: every message still `sent` gets its final receipt at the simulator at
once, one feedback poll is started (as the cron starts it), and the phase ends when all of them are delivered.

Owns that phase's measurement. The simulator holds receipts back (`bench.services.RECEIPTS_HELD`) until here,
so the cron's own polls during the sending phases apply none of them.
"""

from __future__ import annotations

from typing import Any

from rq import Queue

from bench.measure import Probe, Snapshot, cpu_ms_by_process, cpu_ms_per, sent_delta
from bench.services import RECEIPTS_HELD
from workers.wiring import pipeline

POLL_FEEDBACK = "workers.entry.jobs.poll_feedback"


def receipts(probe: Probe, sending_rate: float, timeout: float) -> tuple[dict[str, Any], Snapshot, Snapshot]:
    """Apply the final receipt of every outstanding message; per second, CPU and ClickSend calls per receipt
    (and the snapshots either side, for the capacity figures)."""
    counted_before = _delivered_receipts(probe)
    before = probe.snapshot()
    outstanding = before.states.get("sent", 0)
    target = before.states.get("delivered", 0) + outstanding
    probe.faults(receipt_delay=0)
    try:
        Queue(pipeline.SEND_QUEUE, connection=probe.conn).enqueue(POLL_FEEDBACK, result_ttl=60)
        finished = probe.wait(lambda states: states.get("delivered", 0) >= target, timeout)
    finally:
        probe.faults(receipt_delay=RECEIPTS_HELD)
    after = probe.snapshot()
    seconds = after.at - before.at
    delivered = after.states.get("delivered", 0) - before.states.get("delivered", 0)
    calls = sent_delta(before, after, 0)["calls_by_path"]
    receipt_calls = sum(v for k, v in calls.items() if "receipts" in k)
    figures = {"receipts": outstanding, "seconds": seconds, "per_s": delivered / seconds, "finished": finished,
               "ratio_vs_sending": delivered / seconds / sending_rate,
               "cpu_ms_per_receipt": cpu_ms_per(before, after, delivered),
               "cpu_ms_per_receipt_by_process": cpu_ms_by_process(before, after, delivered),
               "calls_per_receipt": receipt_calls / delivered if delivered else None, "calls_by_path": calls,
               "lost": outstanding - delivered,
               # A receipt applied twice would move one message to delivered twice: counted more than delivered.
               "duplicates": _delivered_receipts(probe) - counted_before - delivered}
    return figures, before, after


def _delivered_receipts(probe: Probe) -> int:
    """Receipts Hookline counted as delivering a message, pushed or polled."""
    counts = probe.store.counters.read().receipts
    return int(sum(n for (_, result), n in counts.items() if result == "delivered"))
