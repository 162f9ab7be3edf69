"""`python -m bench [--quick] [--json FILE]`: every benchmark phase of issue 13 in one command.

Starts its own redis-server, the ClickSend simulator and the Procfile's processes on loopback (bench.services),
runs the phases (ingest, no-op baseline, sending, polled receipts, faulty, pushed receipts, scale, capacity), stops everything it started
(also on Ctrl-C, SIGTERM or an error), and writes the generated section of BENCHMARKS.md and the JSON report.
Owns the order of the phases and the run's settings; each phase measures itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import capacity, receipts, report, scale, sending
from bench.measure import Probe
from bench.services import ROOT, Services


@dataclass(frozen=True)
class Plan:
    """How big each phase is."""

    quick: bool
    events: int  # sending: events in the backlog, one SMS each
    noop_jobs: int  # the baseline: the quick run may drain fewer no-op jobs than it sends (the ratio is of rates)
    faulty_events: int
    scale_events: int
    pushed_receipts: int
    ingest: dict[str, float]  # bench/ingest.py's settings: rounds, seconds, latency_seconds
    benchmark_requests: int
    timeout: float  # per phase

    @classmethod
    def of(cls, quick: bool) -> Plan:
        """The --quick plan (within 5 minutes on 2 cores) or the full one (10,000 events). The quick backlogs are
        5,000 events: at 2,000, spread over the 16 partitions, each drain had 125 events, and the figures were
        mostly what a drain job costs whatever its size (a fork, a send call), not what a message costs."""
        if quick:
            return cls(True, 5000, 300, 5000, 5000, 1000, {"rounds": 2, "seconds": 3, "latency_seconds": 4}, 20_000, 240)
        return cls(False, 10_000, 2000, 10_000, 10_000, 10_000, {"rounds": 3, "seconds": 5, "latency_seconds": 8}, 100_000, 900)


def main(argv: list[str] | None = None) -> int:
    """Run every phase; write BENCHMARKS.md's generated section and, with --json, the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller phases: within 5 minutes on 2 cores")
    parser.add_argument("--json", type=Path, help="write the JSON report here")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md", help="the file to update")
    parser.add_argument("--skip-ingest", action="store_true", help="leave out the ingest phase")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):  # either one unwinds through every `finally` that stops processes
        signal.signal(sig, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt as exc:
        print(f"python -m bench: stopped by {exc}; every process it started is stopped", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    """The phases, the report and the files."""
    plan = Plan.of(args.quick)
    started, load_before = time.perf_counter(), _load()
    result: dict[str, Any] = {"ingest": {} if args.skip_ingest else run_ingest(plan)}
    with tempfile.TemporaryDirectory(prefix="hookline-bench-") as home:
        result |= run_service_phases(plan, Path(home))
    result["run"] = {"quick": plan.quick, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "seconds": time.perf_counter() - started, "load_before": load_before, "load_after": _load(),
                     "machine": _machine(), "settings": _settings(plan)}
    result["verdict"] = report.judge(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    existing = args.markdown.read_text() if args.markdown.exists() else ""  # a new file: the section alone
    args.markdown.write_text(report.splice(existing, report.markdown(result)))
    for t in result["verdict"]["targets"]:
        print(f"{t['key']:32} {t['value']!s:>24} {t['target']:>8}  {t['met']}")
    print(f"nothing lost or duplicated: {result['verdict']['nothing_lost_or_duplicated']}")
    return 0


def run_service_phases(plan: Plan, home: Path) -> dict[str, Any]:
    """The phases that need Hookline's processes, in order, and stopping every process afterwards."""
    services = Services.create(home)  # stops what it started if it cannot finish
    try:
        first = services.start_group("a")
        probe = Probe.create(services)
        time.sleep(2)  # the workers register and the cron runs its first pass
        sending.noop_drain(probe, 100, plan.timeout)  # warm-up: the first forks are slower
        noop = sending.noop_drain(probe, plan.noop_jobs, plan.timeout)
        polls = probe.polls
        clean, s_before, s_after = sending.send_backlog(probe, "clean", plan.events, plan.timeout)
        sending_costs = (s_before, s_after, probe.polls - polls, plan.events)
        clean["ratio_vs_noop_drain"] = clean["messages_per_s"] / noop["per_s"]
        polls = probe.polls
        feedback, r_before, r_after = receipts.receipts(probe, clean["messages_per_s"], plan.timeout)
        receipt_costs = (r_before, r_after, probe.polls - polls, max(1, feedback["receipts"]))
        faulty = sending.faulty(probe, plan.faulty_events, clean["messages_per_s"], plan.timeout)
        feedback["pushed"] = receipts.pushed(probe, first.web_url, services.env["HOOKLINE_RECEIPT_TOKEN"],
                                             plan.pushed_receipts, plan.timeout)
        second = services.start_group("b")
        time.sleep(2)
        spread = scale.scale(probe, plan.scale_events, clean["messages_per_s"], second.worker_prefix, plan.timeout)
        cap = capacity.capacity(sending_costs, receipt_costs, messages_per_event=1.0)
        cap["redis_benchmark"] = capacity.redis_benchmark(services.redis_url, plan.benchmark_requests)
    finally:
        services.stop()
    return {"noop": noop, "sending": clean, "receipts": feedback, "faulty": faulty, "scale": spread,
            "capacity": cap}


def run_ingest(plan: Plan) -> dict[str, Any]:
    """The ingest phase, by `bench/ingest.py` (its own Redis and gunicorns): ratio against the enqueue-only
    endpoint and Hookline's worst p99 at the offered rate, new and kept-alive connections."""
    from bench import ingest  # imported here: it puts the checkout on sys.path for its gunicorns' imports

    figures: dict[str, Any] = ingest.run(**plan.ingest)
    return figures | {"rate": figures.get("settings", {}).get("rate")}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _machine() -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("rq", "redis", "gunicorn", "flask"))
    return (f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; {versions}; "
            f"redis-server from `workers.tools.localredis` (AOF off)")


def _settings(plan: Plan) -> str:
    return (f"{plan.events:,} events in the sending backlog (one SMS each), {plan.noop_jobs:,} no-op jobs, "
            f"{plan.faulty_events:,} in the faulty phase, {plan.pushed_receipts:,} receipts pushed, "
            f"{plan.scale_events:,} events in the scale phase; per group "
            "the Procfile's web (2 gevent workers), two `worker`s, `callbacks` and `cron`, Hookline's defaults "
            "for batch sizes and send rate; the simulator adds 20 ms to every request")


if __name__ == "__main__":
    sys.exit(main())
