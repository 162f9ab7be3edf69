"""Where a message's CPU goes, stage by stage, without the processes around it: a backlog of events (one SMS
each, `bench.services`' rules) drained, flushed to the simulator and given its final receipts, by RQ's
`SimpleWorker` in this process (the job code and RQ's own per-job work, no fork), against a private Redis.

For each stage: this process's CPU, Redis's CPU, Redis commands and round trips per message, and RQ jobs run;
with `--profile N`, the top N functions of a cProfile of each stage. What `python -m bench` measures in real
processes is this plus RQ's fork per job and the workers' own loops; this is the profile to read before changing
the code (BENCHMARKS.md, "Where a message's CPU goes").

Run: python bench/pipeline.py [--events 2000] [--profile 30]. Prints a Markdown block.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import requests
from rq import Queue, SimpleWorker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.admission import Counted, commands, redis_cpu  # noqa: E402
from bench.measure import start_drains, store_backlog  # noqa: E402
from bench.services import RULES, SOURCES  # noqa: E402
from workers.entry.runtime import Runtime, set_runtime  # noqa: E402
from workers.store import Store  # noqa: E402
from workers.tools.localredis import free_port, start_redis  # noqa: E402
from workers.wiring import pipeline  # noqa: E402
from workers.wiring.rulesdir import RulesDir  # noqa: E402
from workers.wiring.settings import Settings  # noqa: E402

HELD = 10**7  # the simulator keeps receipts at "sent" until the receipts stage


@contextmanager
def services() -> Iterator[tuple[str, str, Path]]:
    """A private redis-server and simulator on loopback: (Redis URL, simulator URL, rules folder)."""
    tmp = Path(tempfile.mkdtemp(prefix="hookline-pipeline-"))
    redis_proc, url = start_redis(tmp / "redis", appendonly=False)
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "sources.yaml").write_text(SOURCES)
    (rules / "bench.yaml").write_text(RULES)
    port = free_port()
    sim = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "workers.entry.cli", "simulator", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _up(sim):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulator at {sim} never answered")
            time.sleep(0.1)
        yield url, sim, rules
    finally:
        proc.terminate()
        proc.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


def _faults(sim: str, **settings: Any) -> None:
    requests.put(f"{sim}/_sim/faults", json=settings, timeout=10).raise_for_status()


class _Counting(SimpleWorker):
    """Counts the jobs it runs."""

    jobs = 0

    def execute_job(self, job: Any, queue: Any) -> None:
        self.jobs += 1
        super().execute_job(job, queue)


def stage(name: str, work: Callable[[], int], info: redis.Redis, n: int, profile: int) -> dict[str, Any]:
    """Run `work` (returns the RQ jobs it ran) and measure it per message."""
    before_cmds, before_sends, before_redis = commands(info), Counted.sends, redis_cpu(info)
    profiler = cProfile.Profile()
    started, cpu = time.perf_counter(), time.process_time()
    if profile:
        profiler.enable()
    jobs = work()
    profiler.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = io.StringIO()
    if profile:
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(profile)
        stats.sort_stats("tottime").print_stats(profile)
    return {"stage": name, "seconds": elapsed, "jobs": jobs, "cpu_ms": 1000 * cpu / n,
            "redis_cpu_ms": 1000 * (redis_cpu(info) - before_redis) / n,
            "commands": (commands(info) - before_cmds) / n, "round_trips": (Counted.sends - before_sends) / n,
            "profile": out.getvalue()}


def run(events: int, profile: int) -> list[dict[str, Any]]:
    """Every stage for a backlog of `events`; the figures of each."""
    with services() as (url, sim, rules):
        # No rate limit to wait out: the stages measure CPU, and the scheduler that runs delayed flushes is not here.
        settings = Settings(redis_url=url, rules_dir=str(rules), clicksend_base_url=sim, log_level="WARNING",
                            send_rate=1000.0)
        client = redis.Redis.from_url(url, decode_responses=True, connection_class=Counted)
        rq_conn = redis.Redis.from_url(url, connection_class=Counted)
        rt = Runtime(settings=settings, store=Store(client, 3600), rq_connection=rq_conn,
                     rules=RulesDir(rules, settings))
        assert rt.rules.reload(), rt.rules.errors
        set_runtime(rt)
        _faults(sim, receipt_delay=HELD)
        info = redis.Redis.from_url(url)

        def burst(queues: tuple[str, ...]) -> int:
            worker = _Counting([Queue(q, connection=rq_conn) for q in queues], connection=rq_conn)
            worker.work(burst=True, logging_level="WARNING")
            return worker.jobs

        claims = store_backlog(rt.store, "pipeline", events)

        def drain() -> int:  # the drains, which send what they queue themselves when no flush holds the outbox
            start_drains(rq_conn, rt.store, claims)
            return burst((pipeline.EVENTS_QUEUE,))

        def flush() -> int:
            return burst(pipeline.ALL_QUEUES)

        def receipts() -> int:
            _faults(sim, receipt_delay=0)
            Queue(pipeline.SEND_QUEUE, connection=rq_conn).enqueue("workers.entry.jobs.poll_feedback", result_ttl=60)
            return burst(pipeline.ALL_QUEUES)

        results = [stage("drain", drain, info, events, profile),
                   stage("flush", flush, info, events, profile),
                   stage("receipts", receipts, info, events, profile)]
        states = rt.store.messages.state_counts()
        set_runtime(None)
        if states.get("delivered", 0) != events:
            raise RuntimeError(f"expected {events} delivered, found {states}")
        return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions of each stage")
    args = parser.parse_args()
    results = run(args.events, args.profile)
    print(f"{args.events} events, one SMS each, RQ's SimpleWorker in one process (no fork)\n")
    print("| stage | seconds | RQ jobs | CPU ms/message | Redis CPU ms/message | commands/message | round trips/message |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['stage']} | {r['seconds']:.2f} | {r['jobs']} | {r['cpu_ms']:.3f} | {r['redis_cpu_ms']:.3f} | "
              f"{r['commands']:.2f} | {r['round_trips']:.3f} |")
    total = {k: sum(r[k] for r in results) for k in ("cpu_ms", "redis_cpu_ms", "commands")}
    print(f"| all | | | {total['cpu_ms']:.3f} | {total['redis_cpu_ms']:.3f} | {total['commands']:.2f} | |")
    for r in results:
        if r["profile"]:
            print(f"\n#### cProfile, {r['stage']}\n\n```\n{r['profile']}```")


if __name__ == "__main__":
    main()
