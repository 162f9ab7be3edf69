"""The receipts phases of `python -m bench`. Polled: every message still `sent` gets its final receipt at the
simulator at once, one feedback poll is started (as the cron starts it), and the phase ends when all of them are
delivered. Pushed: the final receipts of outstanding messages are posted to the web process one request each,
as ClickSend pushes them, and the phase ends when those messages are delivered.

Owns those phases' measurements. The simulator holds receipts back (`bench.services.RECEIPTS_HELD`) except
while a phase asks for them, so the cron's own polls during the other phases apply none of them.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from rq import Queue

from bench.measure import Probe, Snapshot, cpu_ms_by_process, cpu_ms_per, sent_delta
from bench.services import RECEIPTS_HELD
from workers.clicksend.simstate import USER_ID
from workers.core.lifecycle import State
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


def pushed(probe: Probe, web_url: str, receipt_token: str, n: int, timeout: float) -> dict[str, Any]:
    """Push the final receipts of up to `n` outstanding messages to the web process, eight requests in flight;
    per second, CPU per receipt (the web process's included), lost and duplicated."""
    start = probe.states().get("delivered", 0)
    rows = _final_receipts(probe, n)
    counted_before = _delivered_receipts(probe)
    before = probe.snapshot()
    # A cron poll in the moment the receipts were final at the simulator may have applied some already.
    expected = len(rows) - (before.states.get("delivered", 0) - start)
    local = threading.local()

    def push(row: dict[str, Any]) -> int:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        form = {k: "" if v is None else str(v) for k, v in row.items()} | {"user_id": str(USER_ID)}
        return int(local.http.post(f"{web_url}/clicksend/receipts/{receipt_token}", data=form, timeout=30).status_code)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(push, rows))
    target = before.states.get("delivered", 0) + expected
    finished = probe.wait(lambda states: states.get("delivered", 0) >= target, timeout)
    after = probe.snapshot()
    seconds = after.at - before.at
    delivered = after.states.get("delivered", 0) - before.states.get("delivered", 0)
    return {"receipts": len(rows), "seconds": seconds, "per_s": len(rows) / seconds, "finished": finished,
            "refused": sum(a != 200 for a in answers), "cpu_ms_per_receipt": cpu_ms_per(before, after, len(rows)),
            "cpu_ms_per_receipt_by_process": cpu_ms_by_process(before, after, len(rows)),
            "lost": expected - delivered, "duplicates": _delivered_receipts(probe) - counted_before - delivered}


def _final_receipts(probe: Probe, n: int) -> list[dict[str, Any]]:
    """Up to `n` final receipts as the simulator has them (its receipt list, read before the phase's clock
    starts), the receipts held back again afterwards."""
    url = f"{probe.services.sim_url}/v3/sms/receipts"
    rows: list[dict[str, Any]] = []
    probe.faults(receipt_delay=0)
    try:
        page, last = 1, 1
        while page <= last:
            body = probe.http.get(url, params={"page": page, "limit": 100}, auth=("bench", "bench"), timeout=30).json()
            rows += body["data"]["data"]
            page, last = page + 1, body["data"]["last_page"]
    finally:
        probe.faults(receipt_delay=RECEIPTS_HELD)
    # The list still holds receipts the polled phase applied (only those over a minute old are marked read).
    messages = probe.store.messages.get_messages([str(r["custom_string"]) for r in rows])
    return [r for r, m in zip(rows, messages, strict=True) if m is not None and m.state == State.SENT][:n]


def _delivered_receipts(probe: Probe) -> int:
    """Receipts Hookline counted as delivering a message, pushed or polled."""
    counts = probe.store.counters.read().receipts
    return int(sum(n for (_, result), n in counts.items() if result == "delivered"))
