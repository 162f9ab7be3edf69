"""The benchmark's report: figures from measured intervals and counts, the targets of issue 13 judged against
them, and the generated section of BENCHMARKS.md.

Pure: no processes, no Redis, no clock; `bench.__main__` measures and passes the numbers in.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

START = "<!-- python -m bench: generated section, start -->"
END = "<!-- python -m bench: generated section, end -->"


@dataclass(frozen=True)
class Target:
    """One figure the issue sets a bound on: `key` is a dotted path into the report."""

    key: str
    op: str  # ">=" or "<="
    bound: float

    def met(self, value: float | None) -> bool | None:
        """Whether `value` meets the bound; None when the figure was not measured."""
        if value is None:
            return None
        return bool({">=": operator.ge, "<=": operator.le}[self.op](value, self.bound))


TARGETS = (
    Target("ingest.ratio_vs_enqueue_only", ">=", 1.2),
    Target("sending.ratio_vs_noop_drain", ">=", 15),
    Target("sending.cpu_ms_per_message", "<=", 0.6),
    Target("sending.calls_per_message", "<=", 0.05),
    Target("faulty.ratio_vs_clean", ">=", 0.6),
    Target("receipts.cpu_ms_per_receipt", "<=", 0.3),
    Target("receipts.calls_per_receipt", "<=", 0.02),
    Target("scale.drain_overlap", ">=", 0.5),
    Target("scale.second_host_share", ">=", 0.3),
)
LOSS_PHASES = ("sending", "faulty", "receipts", "receipts.pushed", "scale")


def drain_overlap(intervals: Iterable[tuple[float, float]]) -> float:
    """The share of the drain time (the union of the intervals) during which two or more intervals ran."""
    edges = sorted(edge for start, end in intervals if end > start for edge in ((start, 1), (end, -1)))
    running, busy, overlapped, last = 0, 0.0, 0.0, 0.0
    for at, step in edges:
        if running >= 1:
            busy += at - last
        if running >= 2:
            overlapped += at - last
        running += step
        last = at
    return overlapped / busy if busy else 0.0


def share_of(counts: Mapping[str, int], prefix: str) -> float:
    """The share of the total of `counts` (by worker name) held by the names starting with `prefix`."""
    total = sum(counts.values())
    return sum(n for name, n in counts.items() if name.startswith(prefix)) / total if total else 0.0


def lookup(report: Mapping[str, Any], key: str) -> Any:
    """The value at dotted `key` in `report`, or None."""
    value: Any = report
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def judge(report: Mapping[str, Any]) -> dict[str, Any]:
    """Each target met or missed (None: not measured), and whether every phase lost and duplicated nothing."""
    targets = [{"key": t.key, "target": f"{t.op} {t.bound:g}", "value": lookup(report, t.key),
                "met": t.met(lookup(report, t.key))} for t in TARGETS]
    losses = {phase: {"lost": lookup(report, f"{phase}.lost"), "duplicates": lookup(report, f"{phase}.duplicates")}
              for phase in LOSS_PHASES}
    clean = all(v["lost"] == 0 and v["duplicates"] == 0 for v in losses.values())
    return {"targets": targets, "nothing_lost_or_duplicated": clean, "losses": losses}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pairs(values: Mapping[str, Any] | None) -> str:
    return ", ".join(f"`{k}` {_fmt(v)}" for k, v in (values or {}).items()) or "–"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def markdown(report: Mapping[str, Any]) -> str:
    """The generated section of BENCHMARKS.md, between its markers."""
    run, verdict = report["run"], report["verdict"]
    rows = "\n".join(f"| `{t['key']}` | {_fmt(t['value'], 4)} | {t['target']} | {_verdict(t['met'])} |"
                     for t in verdict["targets"])
    losses = "\n".join(f"| {phase} | {_fmt(v['lost'])} | {_fmt(v['duplicates'])} |"
                       for phase, v in verdict["losses"].items())
    zero = "met" if verdict["nothing_lost_or_duplicated"] else "**missed**"
    return f"""{START}
## Latest run: `python -m bench{' --quick' if run['quick'] else ''}` ({run['finished']})

{run['machine']}; load average before the run {run['load_before']}, after {run['load_after']} (1 / 5 / 15 min:
other engineers' tests and benchmarks share these two cores, so absolute figures swing; the ratios are against a
baseline measured in the same run). {run['seconds']:.0f} s in all. Settings: {run['settings']}.

| figure | value | target | |
|---|---:|---:|---|
{rows}

Nothing lost and nothing sent twice in every phase: {zero}.

| phase | lost | duplicates |
|---|---:|---:|
{losses}

{phase_tables(report)}
{END}"""


def phase_tables(report: Mapping[str, Any]) -> str:
    """Each phase's figures beside its baseline."""
    noop, s, f, r, sc, cap = (report.get(k, {}) for k in ("noop", "sending", "faulty", "receipts", "scale", "capacity"))
    ingest, rp = report.get("ingest", {}), report.get("receipts", {}).get("pushed", {})
    return f"""### Each phase beside its baseline

| phase | items | seconds | per second | CPU ms / item | ClickSend calls / item | baseline | ratio |
|---|---:|---:|---:|---:|---:|---|---:|
| no-op RQ jobs on the same workers (baseline) | {_fmt(noop.get('jobs'))} | {_fmt(noop.get('seconds'))} | {_fmt(noop.get('per_s'), 0)} | {_fmt(noop.get('cpu_ms_per_job'))} | – | – | – |
| sending: events → SMS, clean | {_fmt(s.get('events'))} | {_fmt(s.get('seconds'))} | {_fmt(s.get('messages_per_s'), 0)} | {_fmt(s.get('cpu_ms_per_message'), 3)} | {_fmt(s.get('calls_per_message'), 4)} | no-op jobs/s | {_fmt(s.get('ratio_vs_noop_drain'))}x |
| faulty: 15% 429s, 20 requests/s cap | {_fmt(f.get('events'))} | {_fmt(f.get('seconds'))} | {_fmt(f.get('messages_per_s'), 0)} | {_fmt(f.get('cpu_ms_per_message'), 3)} | {_fmt(f.get('calls_per_message'), 4)} ({_fmt(f.get('refused'))} 429s) | clean sending | {_fmt(f.get('ratio_vs_clean'))}x |
| receipts: polled, all outstanding | {_fmt(r.get('receipts'))} | {_fmt(r.get('seconds'))} | {_fmt(r.get('per_s'), 0)} | {_fmt(r.get('cpu_ms_per_receipt'), 3)} | {_fmt(r.get('calls_per_receipt'), 4)} | clean sending msgs/s | {_fmt(r.get('ratio_vs_sending'))}x |
| receipts: pushed to the web process, one request each, 8 in flight | {_fmt(rp.get('receipts'))} | {_fmt(rp.get('seconds'))} | {_fmt(rp.get('per_s'), 0)} | {_fmt(rp.get('cpu_ms_per_receipt'), 3)} | 0 ({_fmt(rp.get('refused'))} pushes refused) | polled receipts/s | {_fmt(rp.get('per_s') / r['per_s'] if rp.get('per_s') and r.get('per_s') else None)}x |
| scale: two groups on one Redis | {_fmt(sc.get('events'))} | {_fmt(sc.get('seconds'))} | {_fmt(sc.get('messages_per_s'), 0)} | {_fmt(sc.get('cpu_ms_per_message'), 3)} | – | clean sending (one group) | {_fmt(sc.get('ratio_vs_one_group'))}x |

CPU ms per message by process, clean sending: {_pairs(s.get('cpu_ms_per_message_by_process'))}; per receipt:
{_pairs(r.get('cpu_ms_per_receipt_by_process'))} (a worker's figure includes its work horses and scheduler).

Ingest (`bench/ingest.py`, its own Redis and gunicorns): Hookline / enqueue-only endpoint
**{_fmt(ingest.get('ratio_vs_enqueue_only'))}x**; p99 at {_fmt(ingest.get('rate'), 0)} requests/s offered (open loop)
**{_fmt((ingest.get('p99_ms_at_rate') or {}).get('new_connections'), 1)} ms** with a new connection per request,
**{_fmt((ingest.get('p99_ms_at_rate') or {}).get('kept_alive'), 1)} ms** over kept-alive connections.

Scale: {_fmt(sc.get('drain_jobs'))} drain jobs that did work; events drained by group: {_pairs(sc.get('events_by_group'))};
drain overlap {_fmt(sc.get('drain_overlap'), 3)} (share of the drain time with two or more drains running, from the
RQ job records' `started_at`/`ended_at`), second group's share of the events {_fmt(sc.get('second_host_share'), 3)}.

### Capacity (Redis, over the clean sending and the receipts phases)

Per event from before its backlog was stored (the ingest step's Lua included) until every message was sent;
one SMS per event, so the message row is the event row divided by one.

| per | Redis commands | bytes in + out | memory kept (bytes) | Redis CPU ms |
|---|---:|---:|---:|---:|
| event | {_fmt(cap.get('redis_commands_per_event'), 1)} | {_fmt(cap.get('bytes_per_event'), 0)} | {_fmt(cap.get('memory_per_event'), 0)} | {_fmt(cap.get('redis_cpu_ms_per_event'), 3)} |
| message | {_fmt(cap.get('redis_commands_per_message'), 1)} | {_fmt(cap.get('bytes_per_message'), 0)} | {_fmt(cap.get('memory_per_message'), 0)} | {_fmt(cap.get('redis_cpu_ms_per_message'), 3)} |
| receipt | {_fmt(cap.get('redis_commands_per_receipt'), 1)} | {_fmt(cap.get('bytes_per_receipt'), 0)} | {_fmt(cap.get('memory_per_receipt'), 0)} | {_fmt(cap.get('redis_cpu_ms_per_receipt'), 3)} |

Commands by kind per event: {_pairs(cap.get('top_commands_per_event'))}; per receipt:
{_pairs(cap.get('top_commands_per_receipt'))}.
redis-benchmark on this machine, requests/s (its client shares the two cores with the server):
{_pairs(cap.get('redis_benchmark'))}.
One Redis core at the measured Redis CPU per event: about **{_fmt(cap.get('events_per_s_per_redis_core'), 0)} events/s**.
"""


def splice(document: str, section: str) -> str:
    """`document` with its generated section replaced by `section` (inserted after the first paragraph of the
    introduction when it has none yet); everything written by hand stays."""
    if START in document and END in document:
        head, rest = document.split(START, 1)
        return head + section + rest.split(END, 1)[1]
    first = document.find("\n## ")
    cut = first if first >= 0 else len(document)
    return document[:cut].rstrip("\n") + "\n\n" + section + "\n" + document[cut:]
